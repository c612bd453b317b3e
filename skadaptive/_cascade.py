"""AdaptiveCascadeClassifier: a learned exit policy over independent models."""

from __future__ import annotations

import copy
import time
import warnings
from inspect import signature
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
)
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import check_cv
from sklearn.utils import Bunch, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _is_fitted,
    check_is_fitted,
    check_memory,
    column_or_1d,
    validate_data,
)
from threadpoolctl import threadpool_limits

from ._held_out import fit_stages_on_held_out, is_frozen
from .engine import route
from .policies import (
    DEFAULT_COST_WEIGHTS,
    FEATURE_SETS,
    LOSSES,
    POLICY_FAMILIES,
    check_policy_learner,
    evaluate_policy,
    fit_bottom_up_policy,
    most_accurate_within_budget,
    policy_frontier,
)
from .stages import IndependentStages


def _check_stages(estimators) -> tuple[list[str], list]:
    if not isinstance(estimators, list | tuple) or len(estimators) < 2:
        raise ValueError(
            "estimators must be a list of at least two (name, estimator) pairs, "
            "ordered from the cheapest stage to the most expensive; got "
            f"{estimators!r}."
        )
    names, stages = [], []
    for item in estimators:
        if not (
            isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        ):
            raise ValueError(
                f"Each stage must be a (name, estimator) tuple; got {item!r}."
            )
        names.append(item[0])
        stages.append(item[1])
    if len(set(names)) != len(names):
        raise ValueError(f"Stage names must be unique; got {names}.")
    for name, stage in zip(names, stages):
        if not hasattr(stage, "predict_proba"):
            raise TypeError(
                f"Stage {name!r} ({type(stage).__name__}) has no predict_proba: the "
                "exit policy needs class probabilities from every stage. Use a "
                "classifier that has it (e.g. SVC(probability=True)) or wrap this "
                "one in CalibratedClassifierCV."
            )
    return names, stages


def _check_costs(costs, names) -> np.ndarray:
    try:
        costs = np.asarray(costs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"costs must be 'auto' or numbers, one per stage; got {costs!r}."
        ) from exc
    if costs.shape != (len(names),):
        raise ValueError(
            f"costs must give one per-row cost per stage ({len(names)} for stages "
            f"{names}); got shape {costs.shape}."
        )
    bad = ~np.isfinite(costs) | (costs < 0)
    if bad.any():
        raise ValueError(
            "costs must be finite and non-negative; got "
            + ", ".join(f"{n}={c}" for n, c, b in zip(names, costs, bad) if b)
            + ". Pass each stage's incremental cost per row, or costs='auto'."
        )
    if costs.sum() == 0:
        raise ValueError("costs are all zero: at least one stage must cost something.")
    return costs


def _indexable(X):
    """``X`` as given where rows can be selected from it, else converted.

    Stages get ``X`` unconverted (lists of texts, DataFrames, sparse matrices), but
    the cascade must select rows: sparse formats without row indexing (COO, DIA,
    BSR, ...) become CSR and objects that only implement ``__array__`` become
    arrays, as :func:`sklearn.utils.indexable` does.
    """
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsr()
    if not (hasattr(X, "__getitem__") or hasattr(X, "iloc")):
        return np.asarray(X)
    return X


def _check_budget(budget, costs) -> None:
    # costs are incremental: costs[0] is the cost of answering at stage 1.
    if budget is not None and budget < costs[0]:
        raise ValueError(
            f"budget={budget:g} per row is below the cost of the first stage alone "
            f"({costs[0]:g}, costs={costs.tolist()}), so no policy can meet it. "
            "Raise the budget or put a cheaper model first."
        )


def _frozen_classes(names, stages):
    for name, stage in zip(names, stages):
        if is_frozen(stage) and not _is_fitted(stage):
            raise NotFittedError(
                f"Stage {name!r} is a FrozenEstimator of an unfitted "
                f"{type(stage.estimator).__name__}: fit it before freezing it, or "
                "pass it unfrozen for the cascade to fit."
            )
    frozen = [
        (n, np.asarray(s.classes_)) for n, s in zip(names, stages) if is_frozen(s)
    ]
    if not frozen:
        return None
    first_name, first = frozen[0]
    if len(first) > 1 and not np.all(first[:-1] < first[1:]):
        # Probability columns are matched to labels by sorted lookup, as in
        # scikit-learn, whose classifiers always sort classes_.
        raise ValueError(
            f"Frozen stage {first_name!r} has classes_ {first.tolist()}, which are "
            "not sorted and unique; scikit-learn classifiers sort classes_. Wrap "
            "the model so that classes_ is sorted and its probability columns "
            "follow that order."
        )
    for name, classes in frozen[1:]:
        if not np.array_equal(classes, first):
            raise ValueError(
                f"Frozen stages disagree on their classes: {first_name!r} predicts "
                f"{first.tolist()} but {name!r} predicts {classes.tolist()}. Every "
                "stage must predict the same classes in the same order; refit or "
                "re-export the stages on the same label set."
            )
    return first


class AdaptiveCascadeClassifier(MetaEstimatorMixin, ClassifierMixin, _BaseComposition):
    """Answer easy rows with cheap models and defer hard ones, by a learned policy.

    Stages run from the cheapest to the most expensive. After each stage but the
    last, a learned exit rule looks at how confident the stages so far are and
    either answers with the current stage or defers the row; the next stage runs
    only on deferred rows. The rules minimise, on held-out rows,
    ``loss + cost_weight * cost`` (Bolukbasi et al., 2017), or maximise accuracy
    under an average cost ``budget``.

    Parameters
    ----------
    estimators : list of (str, estimator) tuples
        The stages, ordered from the cheapest to the most expensive. Each needs
        ``predict_proba``. Unfitted stages are cloned and fitted;
        :class:`~sklearn.frozen.FrozenEstimator` stages are used as given and
        never refitted.

    costs : "auto" or array-like of shape (n_stages,), default="auto"
        Incremental cost per row of running each stage, in any unit (seconds,
        FLOPs, dollars). ``"auto"`` measures each fitted stage's
        ``predict_proba`` wall time per row on the policy rows, in seconds.
        Measured costs vary a little between fits; pass ``costs_`` back as
        ``costs`` to make refits reproducible.

    cost_weight : float, default=0.01
        The trade-off ``lam`` >= 0 in ``loss + lam * cost``. Costs are divided by
        the cost of running every stage, so ``lam`` is unit-free: with the 0/1
        loss, ``lam = 0.01`` gives up one accuracy point only to save the full
        cost. Ignored when ``budget`` is set.

    budget : float, default=None
        Maximum average cost per row, in the units of ``costs`` (seconds per row
        with ``costs="auto"``). The fit picks the most accurate policy whose
        average cost on the held-out policy rows is within the budget. Must be
        at least the first stage's cost.

    policy : {"linear", "constant"} or classifier, default="linear"
        Family of the exit rules. ``"linear"`` is an L2-regularised logistic
        regression on standardised features; ``"constant"`` makes one decision
        per stage for all rows; a classifier must accept ``sample_weight``.

    policy_features : {"confidence", "history", "probabilities"}, default="history"
        What the exit rule after stage k sees: ``"confidence"`` is stage k's max
        probability, top-1 minus top-2 margin and normalised entropy;
        ``"history"`` adds the earlier stages' max probabilities and their
        agreement with stage k; ``"probabilities"`` adds stage k's whole
        probability vector. See :func:`skadaptive.policies.policy_features`.

    tune_threshold : bool, default=True
        Move each rule's cut on its learned score to the value that minimises
        the held-out risk. False uses the rule's own prediction, as in the paper.

    loss : {"zero_one", "log_loss"}, default="zero_one"
        Loss of the answering stage in the exit risk.

    cv : int, float, cross-validation generator or iterable, default=5
        How stage probabilities for the policy are held out. An int is the
        number of stratified folds of cross-fitting; a float in (0, 1) is the
        fraction of rows held out from the stages to learn the policy; a
        splitter must give each row to at most one test fold. Stages are then
        refitted on all rows. With only frozen stages, ``cv`` is unused and the
        policy is learned on the data passed to ``fit``.

    memory : str, joblib.Memory or None, default=None
        Caches the fitting and cross-fitting of the stages (and measured costs),
        so that searching policy parameters (``cost_weight``, ``budget``,
        ``policy``, ...) does not refit the stages for every candidate.

    batch_size : int, default=None
        Rows routed through the stages together at prediction; bounds memory.
        ``None`` routes all rows at once. It does not change any row's answer.

    n_jobs : int, default=None
        Parallel jobs for fitting the stages across folds, and threads for
        routing batches at prediction.

    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split for a float ``cv`` and the sample of rows on
        which ``costs="auto"`` is timed.

    verbose : int, default=0
        Progress of the stage fitting.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted stages.
    named_estimators_ : Bunch
        The fitted stages by name.
    classes_ : ndarray of shape (n_classes,)
    costs_ : ndarray of shape (n_stages,)
        Incremental cost per row of each stage, given or measured.
    cumulative_costs_ : ndarray of shape (n_stages,)
        Cost per row of answering at each stage.
    cost_weight_ : float
        The trade-off the policy was learned with: ``cost_weight``, or the one
        found to meet ``budget`` (``inf`` when every row exits at stage 1).
    policy_ : CascadePolicy
        The learned exit rules.
    exit_rates_ : ndarray of shape (n_stages,)
        Fraction of held-out policy rows answered by each stage.
    expected_cost_ : float
        Average cost per row on the held-out policy rows, units of ``costs_``.
    held_out_accuracy_ : float
        Accuracy of the cascade on the held-out policy rows.
    stage_accuracies_ : ndarray of shape (n_stages,)
        Held-out accuracy of each stage alone.
    oracle_accuracy_, oracle_cost_ : float
        Held-out accuracy and average cost of the oracle that answers at the
        first stage that is right: the upper bound of any policy.
    frontier_ : dict of ndarray
        Held-out trade-off traced by refitting the policy (not the stages) over
        a grid of ``cost_weight``: keys ``cost_weight``, ``accuracy``,
        ``expected_cost`` (units of ``costs_``), ``normalized_cost`` (fraction of
        the full cost) and ``exit_rates`` (n_points, n_stages).
    n_features_in_ : int
        Only where ``X`` has a number of features (not for lists of texts).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only where ``X`` has string column names.

    See Also
    --------
    sklearn.ensemble.StackingClassifier : Combines every stage on every row.
    sklearn.model_selection.TunedThresholdClassifierCV : Learns a decision rule
        on held-out predictions, as this estimator's policy is.

    Notes
    -----
    The rules are learned bottom-up (Bolukbasi et al., "Adaptive Neural Networks
    for Efficient Inference", ICML 2017): the exit risk at stage k is
    ``loss_k + lam * C_k`` and the risk of deferring is what the already
    learned downstream rules achieve; each rule is a binary classifier with
    label "exiting is no worse" and sample weight ``|difference of risks|``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import train_test_split
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("lr", LogisticRegression(max_iter=2000)),
    ...      ("rf", RandomForestClassifier(n_estimators=200, random_state=0))],
    ...     costs=[1.0, 20.0], cost_weight=0.01, cv=3,
    ... ).fit(X_train, y_train)
    >>> bool(cascade.score(X_test, y_test) > 0.9)
    True
    >>> exit_stage = cascade.predict_exit(X_test)   # 0: answered by "lr"
    >>> bool(cascade.predict_cost(X_test).mean() < 21.0)
    True
    """

    _parameter_constraints: dict = {
        "estimators": [list],
        "costs": [StrOptions({"auto"}), "array-like"],
        "cost_weight": [Interval(Real, 0, None, closed="left")],
        "budget": [Interval(Real, 0, None, closed="neither"), None],
        "policy": [StrOptions(set(POLICY_FAMILIES)), HasMethods(["fit"])],
        "policy_features": [StrOptions(set(FEATURE_SETS))],
        "tune_threshold": ["boolean"],
        "loss": [StrOptions(set(LOSSES))],
        "cv": ["cv_object", Interval(RealNotInt, 0, 1, closed="neither")],
        "memory": [None, str, HasMethods(["cache"])],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimators,
        *,
        costs="auto",
        cost_weight=0.01,
        budget=None,
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
        self.estimators = estimators
        self.costs = costs
        self.cost_weight = cost_weight
        self.budget = budget
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

    def get_params(self, deep=True):
        """Get parameters, including each stage's as ``<name>__<param>``.

        Parameters
        ----------
        deep : bool, default=True
            If True, also return the stages and their parameters, so that a
            search can tune, e.g., ``lr__C`` or replace a stage by name.

        Returns
        -------
        params : dict
        """
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters, including a stage's (``<name>__<param>``) or a stage.

        Parameters
        ----------
        **params : dict

        Returns
        -------
        self : object
        """
        self._set_params("estimators", **params)
        return self

    # ------------------------------------------------------------------ fit
    @_fit_context(
        # estimators in `estimators` are validated when they are fitted
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the stages, hold out their probabilities and learn the exit policy.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
            Passed to the stages as it is (rows selected with safe indexing).
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights the policy's risks and, where the stages accept it, the
            stages' fits (with metadata routing enabled: where requested).
        **fit_params : dict
            Further parameters for the stages' ``fit`` and the splitter, only
            with metadata routing enabled.

        Returns
        -------
        self : object
        """
        _raise_for_params(fit_params, self, "fit")
        names, stages = _check_stages(self.estimators)
        self._validate_names(names)
        check_policy_learner(self.policy)
        # The constraints allow one string only; costs may be an ndarray (costs_).
        measure_costs = isinstance(self.costs, str)
        if not measure_costs:
            given_costs = _check_costs(self.costs, names)
            _check_budget(self.budget, given_costs)
        if hasattr(self, "n_features_in_"):
            # Left by an earlier fit; X here may have no feature count (texts).
            del self.n_features_in_
        X, y = validate_data(
            self, _indexable(X), y, skip_check_array=True, multi_output=False
        )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        classes = self._check_classes(names, stages, y)
        self.classes_ = classes
        stage_fit_params, splitter_params = self._route_fit_params(
            names, stages, sample_weight, fit_params
        )

        fit_stages = check_memory(self.memory).cache(
            fit_stages_on_held_out, ignore=["n_jobs", "verbose"]
        )
        held_out = fit_stages(
            stages,
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
        )
        self.estimators_ = held_out.estimators
        self.named_estimators_ = Bunch(**dict(zip(names, self.estimators_)))
        self.costs_ = held_out.seconds_per_row if measure_costs else given_costs
        self.cumulative_costs_ = np.cumsum(self.costs_)
        self._stage_fit_seconds = held_out.stage_fit_seconds

        y_policy = np.searchsorted(classes, y[held_out.policy_rows])
        w_policy = (
            None if sample_weight is None else sample_weight[held_out.policy_rows]
        )
        # Kept so that with_policy can move along the frontier without refitting.
        self._policy_data = (held_out.stage_probas, y_policy, w_policy)
        self._learn_policy(*self._policy_data)
        return self

    def with_policy(self, *, cost_weight=None, budget=None):
        """A copy answering at another operating point, without refitting stages.

        The exit policy is learned again from the held-out stage probabilities
        kept by :meth:`fit`, exactly as ``fit`` with the same ``costs_`` would;
        the fitted stages are shared with this estimator, which is unchanged.
        Use it to move along ``frontier_`` after looking at it.

        Parameters
        ----------
        cost_weight : float, default=None
            New trade-off; the copy's ``budget`` is None.
        budget : float, default=None
            New maximum average cost per row, units of ``costs_``.

        Returns
        -------
        estimator : AdaptiveCascadeClassifier
            Fitted copy whose ``cost_weight``/``budget`` parameters say what it
            was learned with.

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
        >>> bool(cheaper.expected_cost_ <= 2.0)
        True
        """
        check_is_fitted(self)
        if (cost_weight is None) == (budget is None):
            raise ValueError("Pass exactly one of cost_weight or budget.")
        new = copy.copy(self)
        new.budget = budget
        if cost_weight is not None:
            new.cost_weight = cost_weight
        new._validate_params()
        new._learn_policy(*self._policy_data)
        return new

    def _check_classes(self, names, stages, y) -> np.ndarray:
        frozen = _frozen_classes(names, stages)
        labels = np.unique(y)
        if frozen is None:
            return labels
        unknown = np.setdiff1d(labels, frozen)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that the frozen stages do not "
                f"predict (they predict {frozen.tolist()})."
            )
        if len(frozen) != len(labels) and len(names) > sum(map(is_frozen, stages)):
            raise ValueError(
                f"The frozen stages predict classes {frozen.tolist()} but y has only "
                f"{labels.tolist()}, so the stages fitted here would predict a "
                "different class set. Fit on data with every class, or freeze "
                "every stage."
            )
        return frozen

    def _route_fit_params(self, names, stages, sample_weight, fit_params):
        if _routing_enabled():
            routed = process_routing(
                self, "fit", sample_weight=sample_weight, **fit_params
            )
            return (
                [routed[name].fit for name in names],
                routed.get("splitter", Bunch(split={})).split,
            )
        stage_fit_params = []
        for name, stage in zip(names, stages):
            params = {}
            if sample_weight is not None and not is_frozen(stage):
                if "sample_weight" in signature(stage.fit).parameters:
                    params["sample_weight"] = sample_weight
                else:
                    warnings.warn(
                        f"Stage {name!r} ({type(stage).__name__}) does not accept "
                        "sample_weight; the weights are used for the policy only. "
                        "Enable metadata routing to control this per stage.",
                        UserWarning,
                        stacklevel=3,
                    )
            stage_fit_params.append(params)
        return stage_fit_params, {}

    def _learn_policy(self, stage_probas, y_encoded, sample_weight):
        # The policy fits are many tiny problems; BLAS threads only add overhead
        # to them (measured 20-50x slower with two OpenBLAS threads on 2 cores).
        with threadpool_limits(limits=1, user_api="blas"):
            self._learn_policy_single_threaded(stage_probas, y_encoded, sample_weight)

    def _learn_policy_single_threaded(self, stage_probas, y_encoded, sample_weight):
        start = time.perf_counter()
        total_cost = self.cumulative_costs_[-1]
        normalized = self.cumulative_costs_ / total_cost
        learn = dict(
            loss=self.loss,
            policy=self.policy,
            feature_set=self.policy_features,
            tune_threshold=self.tune_threshold,
        )
        frontier = policy_frontier(
            stage_probas,
            y_encoded,
            normalized,
            DEFAULT_COST_WEIGHTS,
            sample_weight,
            **learn,
        )
        if self.budget is None:
            chosen = evaluate_policy(
                fit_bottom_up_policy(
                    stage_probas,
                    y_encoded,
                    normalized,
                    self.cost_weight,
                    sample_weight=sample_weight,
                    **learn,
                ),
                stage_probas,
                y_encoded,
                normalized,
                sample_weight,
                self.cost_weight,
            )
        else:
            _check_budget(self.budget, self.costs_)
            chosen = most_accurate_within_budget(
                frontier,
                self.budget / total_cost,
                stage_probas,
                y_encoded,
                normalized,
                sample_weight,
                **learn,
            )
        self.policy_ = chosen.policy
        self.cost_weight_ = chosen.cost_weight
        self.exit_rates_ = chosen.exit_rates
        self.expected_cost_ = chosen.normalized_cost * total_cost
        if self.budget is not None:
            # The search allows for rounding in average costs (a policy exactly
            # at the budget may look over it by the last bit): the budget is met.
            self.expected_cost_ = min(self.expected_cost_, self.budget)
        self.held_out_accuracy_ = chosen.accuracy

        weight = np.ones(len(y_encoded)) if sample_weight is None else sample_weight
        correct = np.stack([np.argmax(p, axis=1) == y_encoded for p in stage_probas])
        self.stage_accuracies_ = correct @ weight / weight.sum()
        first_correct = np.where(
            correct.any(axis=0), np.argmax(correct, axis=0), len(stage_probas) - 1
        )
        self.oracle_accuracy_ = float(correct.any(axis=0) @ weight / weight.sum())
        self.oracle_cost_ = float(
            self.cumulative_costs_[first_correct] @ weight / weight.sum()
        )
        self.frontier_ = {
            "cost_weight": np.array([p.cost_weight for p in frontier]),
            "accuracy": np.array([p.accuracy for p in frontier]),
            "normalized_cost": np.array([p.normalized_cost for p in frontier]),
            "expected_cost": np.array([p.normalized_cost for p in frontier])
            * total_cost,
            "exit_rates": np.stack([p.exit_rates for p in frontier]),
        }
        self._policy_fit_seconds = time.perf_counter() - start

    # -------------------------------------------------------------- predict
    def route(self, X) -> Bunch:
        """Answer each row at the stage the policy picks, and report where.

        Stage k+1 runs only on the rows that stage k deferred.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        result : Bunch
            ``proba`` (n_samples, n_classes): the answering stage's
            probabilities; ``exit_stage`` (n_samples,): 0-based index of that
            stage; ``cost`` (n_samples,): cost of the row, units of ``costs_``.
        """
        check_is_fitted(self)
        X = _indexable(X)
        if hasattr(self, "n_features_in_") and np.ndim(X) == 1:
            # Fitted on rows of features, not on e.g. a list of texts.
            raise ValueError(
                "Expected 2D array, got 1D array instead. Reshape your data either "
                "using array.reshape(-1, 1) if your data has a single feature or "
                "array.reshape(1, -1) if it contains a single sample."
            )
        X = validate_data(self, X, reset=False, skip_check_array=True)
        result = route(
            IndependentStages(self.estimators_),
            self.policy_,
            X,
            n_classes=len(self.classes_),
            batch_size=self.batch_size,
            n_jobs=self.n_jobs,
        )
        result.cost = self.cumulative_costs_[result.exit_stage]
        return result

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the stage that answers each row.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self.route(X).proba

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Class of each row, from the stage that answers it.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)  # checks that the cascade is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_exit(self, X) -> np.ndarray:
        """0-based index of the stage that answers each row.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        exit_stage : ndarray of shape (n_samples,)
        """
        return self.route(X).exit_stage

    def predict_cost(self, X) -> np.ndarray:
        """Cost of answering each row: the sum of the costs of the stages it ran.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        cost : ndarray of shape (n_samples,)
            In the units of ``costs_``.
        """
        return self.route(X).cost

    # ------------------------------------------------------ sklearn plumbing
    def get_metadata_routing(self):
        """Get metadata routing of this object.

        Returns
        -------
        routing : MetadataRouter
            Routes ``fit`` parameters to each stage's ``fit`` and to the
            splitter's ``split``; ``sample_weight`` is also used by the policy.
        """
        router = MetadataRouter(owner=self).add_self_request(self)
        for name, stage in self.estimators:
            router.add(
                **{name: stage},
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        if not isinstance(self.cv, float):
            router.add(
                splitter=check_cv(self.cv),
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        return router

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            stage_tags = [get_tags(stage) for _, stage in self.estimators]
        except (TypeError, ValueError):  # malformed estimators: fit will say why
            return tags
        tags.input_tags.sparse = all(t.input_tags.sparse for t in stage_tags)
        tags.input_tags.allow_nan = all(t.input_tags.allow_nan for t in stage_tags)
        tags.input_tags.string = all(t.input_tags.string for t in stage_tags)
        return tags
