"""What both estimators share: fitting a policy on held-out exits, and routing.

An estimator here is a sequence of exits (independent stages of a cascade, or
the exits of one shared computation) plus an exit policy. The subclass says how
its exits are fitted and held out (:meth:`_fit_held_out`) and what runs them at
prediction (:meth:`_stage_source`); everything else -- costs, policy search,
budgets, the frontier, routing and the prediction methods -- is this one class.
"""

from __future__ import annotations

import copy
import time
import warnings
from inspect import signature
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.stats import norm
from sklearn.base import ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
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
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from threadpoolctl import threadpool_limits

from ._held_out import is_frozen
from .engine import route
from .policies import (
    DEFAULT_COST_WEIGHTS,
    FEATURE_SETS,
    LOSSES,
    POLICIES,
    check_policy,
    make_policy_search,
)
from .policies._search import cross_fitted_exits, select_out_of_sample
from .stages import exit_probas, measure_exit_seconds_per_row

#: Folds over the policy rows for the out-of-sample estimates of the policy.
_POLICY_FOLDS = 5
#: A budget counts as spent when the policy rows' cost is within this of it.
_SPENT_TOLERANCE = 0.03
_MARGIN_ROUNDS = 4


def budget_target(search, normalized_budget, confidence=None) -> float:
    """The normalised budget the thresholds are searched for.

    ``normalized_budget`` itself, or with ``confidence`` that budget lowered by
    a margin so that, for every candidate policy (whichever is kept), the
    one-sided upper confidence bound (at that level) of its average cost per
    row is within the budget: a normal approximation over the weighted policy
    rows, whose effective number is Kish's. The margin covers the sampling
    noise of rows like the policy rows, not a shift of the data; it never goes
    below the first stage's cost.
    """
    if confidence is None:
        return normalized_budget
    z = float(norm.ppf(confidence))
    target = normalized_budget
    for _ in range(_MARGIN_ROUNDS):
        bounds = []
        for candidate in search.budget_candidates(target):
            exit_stage = candidate.policy.exit_stage(search.stage_probas)
            costs = search.cumulative_cost[exit_stage]
            bounds.append(
                (candidate.normalized_cost, _standard_error(costs, search.weight))
            )
        if all(c + z * e <= normalized_budget * (1 + 1e-9) for c, e in bounds):
            break
        margin = max(z * e for _, e in bounds)
        target = max(min(target, normalized_budget - margin), search.cumulative_cost[0])
        if target == search.cumulative_cost[0]:
            break
    return target


def _standard_error(values, weight) -> float:
    """Standard error of a weighted mean (Kish's effective sample size)."""
    weight = weight / weight.sum()
    mean = weight @ values
    n_effective = 1.0 / (weight @ weight)
    return float(np.sqrt(weight @ (values - mean) ** 2 / n_effective))


_SHARED_PARAMETERS = """cost_weight : float, default=0.01
        The trade-off ``lam`` >= 0 in ``loss + lam * cost``. Costs are divided by
        the cost of running every stage, so ``lam`` is unit-free: with the 0/1
        loss, ``lam = 0.01`` gives up one accuracy point only to save the full
        cost. Ignored when ``budget`` is set.

    budget : float, default=None
        Maximum average cost per row, in the units of ``costs``. The fit
        chooses one threshold per exit directly for the budget: for each kind
        of exit score (this family's, and per-stage max probabilities, which
        every family tries) the most accurate thresholds whose average cost on
        the held-out policy rows is within it; the kind kept has the lowest
        out-of-sample loss (5-fold cross-fitting over the policy rows) of
        those tried, per-stage max probabilities included.
        What is guaranteed is the average over rows like the policy rows;
        ``expected_cost_`` estimates it out of sample, and
        ``budget_confidence`` adds a margin. A budget below the first stage's
        cost cannot be met and is an error that says by how much.

    budget_confidence : float in (0.5, 1), default=None
        With ``budget`` (ignored without): choose the policy so that the
        one-sided upper confidence bound, at this level, of its average cost
        per row is within the budget (a normal approximation over the
        held-out policy rows). Spends a little less of the budget on the
        policy rows so that new rows like them stay within it more often. None
        meets the budget on the policy rows exactly. ``with_policy`` keeps it.

    policy : str or classifier, default="linear"
        How exits are decided; every family honours ``cost_weight`` and
        ``budget``. Bolukbasi et al.'s rules learned bottom-up: ``"linear"``
        (an L2-regularised logistic regression on standardised features),
        ``"constant"`` (one decision per stage for all rows) or a classifier
        that accepts ``sample_weight``. ``"eenet"``: learned per-stage
        correctness scores with per-stage thresholds (EENet). Heuristic
        baselines with one threshold shared by all stages for a ``cost_weight``
        and one per stage for a ``budget``: ``"max_proba"``,
        ``"entropy"`` (one minus normalised entropy) and ``"patience"``
        (consecutive stages that agree). See :mod:`skadaptive.policies`.

    policy_features : {"confidence", "history", "probabilities"}, \
            default="history"
        Bolukbasi rules only. What the rule after stage k sees:
        ``"confidence"`` is stage k's max probability, top-1 minus top-2
        margin and normalised entropy; ``"history"`` adds the earlier stages'
        max probabilities and their agreement with stage k;
        ``"probabilities"`` adds stage k's whole probability vector. See
        :func:`skadaptive.policies.policy_features`.

    tune_threshold : bool, default=True
        Bolukbasi rules only. Move each rule's cut on its learned score to the
        value that minimises the held-out risk. False uses the rule's own
        prediction, as in the paper.

    loss : {"zero_one", "log_loss"}, default="zero_one"
        Loss of the answering stage in the objective ``loss + lam * cost``.

    cv : int, float, cross-validation generator or iterable, default=5
        How stage probabilities for the policy are held out. An int is the
        number of stratified folds of cross-fitting; a float in (0, 1) is the
        fraction of rows held out from the stages to learn the policy; a
        splitter must give each row to at most one test fold. What is fitted
        here is then refitted on all rows. With only frozen stages, ``cv`` is
        unused and the policy is learned on the data passed to ``fit``.

    memory : str, joblib.Memory or None, default=None
        Caches the fitting and cross-fitting of the stages (and measured costs),
        so that searching policy parameters (``cost_weight``, ``budget``,
        ``policy``, ...) does not refit the stages for every candidate.

    batch_size : int, default=None
        Rows routed through the stages together at prediction; bounds memory.
        ``None`` routes all rows at once. It does not change any row's answer.

    n_jobs : int, default=None
        Parallel jobs for fitting across folds, and threads for routing
        batches at prediction.

    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split for a float ``cv`` and the sample of rows on
        which ``costs="auto"`` is timed.

    verbose : int, default=0
        Progress of the fitting."""

_SHARED_ATTRIBUTES = """cost_weight_ : float
        The trade-off the policy's scores were learned with: ``cost_weight``;
        with a ``budget``, the cost weight of the Bolukbasi rules whose scores
        were chosen, ``nan`` when the chosen scores depend on none (EENet's,
        a heuristic's, or the per-stage max-probability baseline's).
    policy_ : CascadePolicy
        The exit rules, one per stage but the last.
    budget_ : float or None
        The budget the policy was chosen for (``budget``).
    budget_status_ : {"spent", "saturated"} or None
        With a budget: ``"spent"`` when the policy's average cost on the
        policy rows is within 3 % below the budget searched; ``"saturated"``
        when it costs less because, for the kind of exit score kept, the most
        accurate thresholds within the budget cost less (more budget would buy
        nothing with those scores on those rows; another kind of score might
        have spent more, see ``budget_search_``). None without a budget.
    budget_search_ : dict or None
        With a budget, one entry per kind of exit score tried, like the
        ``cv_results_`` of a search: ``scores`` (its name), ``cost_weight``
        (of learned rules, else nan), ``policy_rows_accuracy`` and
        ``policy_rows_cost`` (in sample), ``expected_accuracy`` and
        ``expected_cost`` (each kind's own 5-fold cross-fitted figures),
        ``chosen`` (the index kept: the lowest cross-fitted loss, ties to the
        cheaper; ``expected_accuracy_`` is not its figure, which would be
        optimistic by the choice, but one with the choice held out too) and
        ``searched_budget`` (lower than ``budget`` with ``budget_confidence``).
        None without a budget.
    exit_rates_ : ndarray of shape (n_stages,)
        Fraction of held-out policy rows answered by each stage.
    policy_rows_cost_, policy_rows_accuracy_ : float
        Average cost per row (units of ``costs_``) and accuracy on the held-out
        policy rows, the rows the policy's rules and thresholds were chosen
        on: in sample for the policy, so optimistic. The budget holds here.
    expected_cost_, expected_accuracy_ : float
        Out-of-sample estimates of the average cost per row (units of
        ``costs_``) and of the accuracy: the policy rows are split in 5 folds,
        the policy is chosen again on four (same family, same ``cost_weight``
        or ``budget``) and decides the fifth; with a budget, the kind of exit
        score for each fold is also chosen without that fold's rows (see
        ``budget_search_``). Never clamped: with a budget,
        ``expected_cost_`` may exceed it. It estimates what new rows cost if
        the stages answer them as they answered the held-out rows; stages
        refitted on all rows after cross-fitting are often more confident on
        new rows, which then defer less and cost less.
    stage_accuracies_ : ndarray of shape (n_stages,)
        Held-out accuracy of each stage alone.
    oracle_accuracy_, oracle_cost_ : float
        Held-out accuracy and average cost of the oracle that answers at the
        first stage that is right: the upper bound of any policy.
    frontier_ : dict of ndarray
        Trade-off on the held-out policy rows, traced by refitting the policy
        (not the stages) over a grid of ``cost_weight`` when first read (a fit
        pays for one policy only): keys ``cost_weight``, ``accuracy``,
        ``expected_cost`` (units of ``costs_``), ``normalized_cost`` (fraction of
        the full cost) and ``exit_rates`` (n_points, n_stages).
    n_features_in_ : int
        Only where ``X`` has a number of features (not for lists of texts).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only where ``X`` has string column names."""


def fill_shared_docs(cls):
    """Put the parameters and attributes both estimators share into a docstring."""
    cls.__doc__ = cls.__doc__.replace(
        "{shared_parameters}", _SHARED_PARAMETERS
    ).replace("{shared_attributes}", _SHARED_ATTRIBUTES)
    return cls


def check_costs(costs, names) -> np.ndarray:
    """``costs`` as float64, one finite non-negative cost per stage, not all 0."""
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


def indexable(X):
    """``X`` as given where rows can be selected from it, else converted.

    Stages get ``X`` unconverted (lists of texts, DataFrames, sparse matrices), but
    the estimator must select rows: sparse formats without row indexing (COO,
    DIA, BSR, ...) become CSR and objects that only implement ``__array__``
    become arrays, as :func:`sklearn.utils.indexable` does.
    """
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsr()
    if not (hasattr(X, "__getitem__") or hasattr(X, "iloc")):
        return np.asarray(X)
    return X


def check_budget(budget, costs, names) -> None:
    """Raise if no policy can meet ``budget``: it is below the first stage's cost."""
    # costs are incremental: costs[0] is the cost of answering at the first stage.
    if budget is not None and budget < costs[0]:
        raise ValueError(
            f"budget={budget:g} per row cannot be met: answering every row at the "
            f"first stage ({names[0]!r}) already costs {costs[0]:g}, "
            f"{costs[0] - budget:g} over the budget ({costs[0] / budget - 1:.1%}); "
            f"costs={np.round(costs, 12).tolist()}. Raise the budget or make the "
            "first stage cheaper."
        )


def frozen_classes(names, members):
    """Classes shared by the frozen members, or None when none is frozen."""
    for name, member in zip(names, members):
        # A ready multi-exit source is not an estimator: only a FrozenEstimator
        # can wrap something unfitted.
        if isinstance(member, FrozenEstimator) and not _is_fitted(member):
            inner = getattr(member, "estimator", member)
            raise NotFittedError(
                f"Stage {name!r} is a FrozenEstimator of an unfitted "
                f"{type(inner).__name__}: fit it before freezing it, or pass it "
                "unfrozen to be fitted here."
            )
    frozen = [
        (n, np.asarray(s.classes_)) for n, s in zip(names, members) if is_frozen(s)
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


class BaseAdaptiveClassifier(MetaEstimatorMixin, ClassifierMixin, _BaseComposition):
    """Exits, a learned exit policy over them, and rows routed by that policy.

    Subclasses implement ``_members()`` (names and estimators, for class and
    freezing checks), ``_stage_names()`` (after fit: one name per exit),
    ``_check_structure()`` (before fit; returns the exit names when known),
    ``_fit_held_out(X, y, classes, sample_weight, fit_params, measure_costs)``
    (fits what must be fitted, returns held-out exit probabilities) and
    ``_stage_source()`` (what runs the exits at prediction).
    """

    _parameter_constraints: dict = {
        "costs": [StrOptions({"auto"}), "array-like"],
        "cost_weight": [Interval(Real, 0, None, closed="left")],
        "budget": [Interval(Real, 0, None, closed="neither"), None],
        "budget_confidence": [Interval(Real, 0.5, 1, closed="neither"), None],
        "policy": [StrOptions(set(POLICIES)), HasMethods(["fit"])],
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

    # ------------------------------------------------------------------ fit
    @_fit_context(
        # the stages are validated when they are fitted
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the exits, hold out their probabilities and learn the exit policy.

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
        names = self._check_structure()
        check_policy(self.policy)
        measure_costs = self._measure_costs()
        if not measure_costs and names is not None:
            # Fail before fitting anything when the costs are known already.
            check_budget(self.budget, check_costs(self.costs, names), names)
        if hasattr(self, "n_features_in_"):
            # Left by an earlier fit; X here may have no feature count (texts).
            del self.n_features_in_
        X, y = validate_data(
            self, indexable(X), y, skip_check_array=True, multi_output=False
        )
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, ensure_non_negative=True
            )
        self.classes_ = self._check_classes(y)
        held_out = self._fit_held_out(
            X, y, self.classes_, sample_weight, fit_params, measure_costs
        )
        self.costs_ = self._fitted_costs(held_out, measure_costs)
        self.cumulative_costs_ = np.cumsum(self.costs_)
        self._stage_fit_seconds = held_out.stage_fit_seconds

        y_policy = np.searchsorted(self.classes_, y[held_out.policy_rows])
        w_policy = (
            None if sample_weight is None else sample_weight[held_out.policy_rows]
        )
        # Kept so that with_policy can move along the frontier without refitting.
        self._policy_data = (held_out.stage_probas, y_policy, w_policy)
        self._learn_policy(*self._policy_data)
        return self

    def _measure_costs(self) -> bool:
        # The constraints allow one string only; costs may be an ndarray (costs_).
        return isinstance(self.costs, str)

    def _fitted_costs(self, held_out, measure_costs) -> np.ndarray:
        if measure_costs:
            return held_out.seconds_per_row
        return check_costs(self.costs, self._stage_names())

    def _alone_costs(self, incremental) -> np.ndarray:
        """Cost per row of answering every row with each stage on its own."""
        return np.asarray(incremental, dtype=np.float64)

    def _cost_unit(self) -> str | None:
        """The unit of ``costs_``, where known (for plots and reports)."""
        return "seconds" if isinstance(self.costs, str) else None

    def _check_classes(self, y) -> np.ndarray:
        names, members = self._members()
        frozen = frozen_classes(names, members)
        labels = np.unique(y)
        if frozen is None:
            return labels
        unknown = np.setdiff1d(labels, frozen)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that the frozen stages do not "
                f"predict (they predict {frozen.tolist()})."
            )
        if len(frozen) != len(labels) and len(names) > sum(map(is_frozen, members)):
            raise ValueError(
                f"The frozen stages predict classes {frozen.tolist()} but y has only "
                f"{labels.tolist()}, so the stages fitted here would predict a "
                "different class set. Fit on data with every class, or freeze "
                "every stage."
            )
        return frozen

    def with_policy(self, *, cost_weight=None, budget=None, policy=None):
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
        policy : str or classifier, default=None
            Another policy family for the copy; None keeps this one's.

        Returns
        -------
        estimator : object
            Fitted copy whose ``cost_weight``/``budget``/``policy`` parameters
            say what it was learned with.

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
        new = copy.copy(self)
        # Parameters are the copy's own (set_params on it leaves this one alone);
        # fitted attributes are shared, and the policy's are replaced below.
        for name, value in self.get_params(deep=False).items():
            setattr(new, name, clone(value, safe=False))
        new.budget = budget
        if cost_weight is not None:
            new.cost_weight = cost_weight
        if policy is not None:
            new.policy = policy
        new._validate_params()
        new._learn_policy(*self._policy_data)
        return new

    def _learn_policy(self, stage_probas, y_encoded, sample_weight):
        # The policy fits are many tiny problems; BLAS threads only add overhead
        # to them (measured 20-50x slower with two OpenBLAS threads on 2 cores).
        with threadpool_limits(limits=1, user_api="blas"):
            self._learn_policy_single_threaded(stage_probas, y_encoded, sample_weight)

    def _learn_policy_single_threaded(self, stage_probas, y_encoded, sample_weight):
        start = time.perf_counter()
        total_cost = self.cumulative_costs_[-1]
        search = self._policy_search(stage_probas, y_encoded, sample_weight)
        self.budget_ = self.budget
        if self.budget is None:
            lam = self.cost_weight

            def choose(search):
                return [search.at_cost_weight(lam)]

        else:
            check_budget(self.budget, self.costs_, self._stage_names())
            normalized_budget = self.budget / total_cost
            confidence = self.budget_confidence

            def choose(search):
                target = budget_target(search, normalized_budget, confidence)
                return search.budget_candidates(target)

        candidates = choose(search)
        # Out of sample for the policy: each row decided by policies chosen
        # (rules, thresholds, budget search) without it. With a budget, the
        # kind of exit score is chosen on these figures, not on the rows the
        # thresholds were fitted to. Never clamped.
        exit_stage, folds = cross_fitted_exits(
            search,
            choose,
            n_splits=_POLICY_FOLDS,
            random_state=self.random_state,
            return_folds=True,
        )
        best, out_of_sample, estimate = select_out_of_sample(search, exit_stage, folds)
        chosen = candidates[best]
        self.policy_ = chosen.policy
        self.cost_weight_ = chosen.cost_weight
        self.exit_rates_ = chosen.exit_rates
        self.policy_rows_cost_ = chosen.normalized_cost * total_cost
        self.policy_rows_accuracy_ = chosen.accuracy
        self.expected_cost_ = estimate.normalized_cost * total_cost
        self.expected_accuracy_ = estimate.accuracy
        self.budget_status_ = None
        self.budget_search_ = None
        if self.budget is not None:
            searched = budget_target(search, normalized_budget, confidence)
            spent = chosen.normalized_cost >= (1 - _SPENT_TOLERANCE) * searched
            self.budget_status_ = "spent" if spent else "saturated"
            self.budget_search_ = {
                "scores": np.array([c.kind for c in candidates]),
                "cost_weight": np.array([c.cost_weight for c in candidates]),
                "policy_rows_accuracy": np.array([c.accuracy for c in candidates]),
                "policy_rows_cost": np.array(
                    [c.normalized_cost * total_cost for c in candidates]
                ),
                "expected_accuracy": np.array([e.accuracy for e in out_of_sample]),
                "expected_cost": np.array(
                    [e.normalized_cost * total_cost for e in out_of_sample]
                ),
                "chosen": best,
                "searched_budget": searched * total_cost,
            }
        self._policy_fit_seconds = time.perf_counter() - start

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
        # frontier_ is traced when first read: a fit pays for one policy only.
        self._frontier_points = None

    def _policy_search(self, stage_probas, y_encoded, sample_weight):
        return make_policy_search(
            self.policy,
            stage_probas,
            y_encoded,
            self.cumulative_costs_ / self.cumulative_costs_[-1],
            sample_weight,
            loss=self.loss,
            feature_set=self.policy_features,
            tune_threshold=self.tune_threshold,
        )

    def _frontier_evaluations(self) -> list:
        """The policies of ``frontier_`` on the policy rows, traced once."""
        check_is_fitted(self)
        if getattr(self, "_frontier_points", None) is None:
            with threadpool_limits(limits=1, user_api="blas"):
                search = self._policy_search(*self._policy_data)
                self._frontier_points = search.frontier(DEFAULT_COST_WEIGHTS)
        return self._frontier_points

    @property
    def frontier_(self) -> dict:
        """Accuracy against cost over a grid of ``cost_weight`` (see Attributes)."""
        frontier = self._frontier_evaluations()
        normalized = np.array([p.normalized_cost for p in frontier])
        return {
            "cost_weight": np.array([p.cost_weight for p in frontier]),
            "accuracy": np.array([p.accuracy for p in frontier]),
            "normalized_cost": normalized,
            "expected_cost": normalized * self.cumulative_costs_[-1],
            "exit_rates": np.stack([p.exit_rates for p in frontier]),
        }

    def _route_fit_params(self, sample_weight, fit_params):
        names, stages = self._members()
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
                    warn_sample_weight_unused(name, stage)
            stage_fit_params.append(params)
        return stage_fit_params, {}

    # ------------------------------------------------------------- evaluate
    def evaluate_frontier(self, X, y, *, sample_weight=None) -> dict:
        """Accuracy and cost of every ``frontier_`` policy, and of each stage,
        on the rows ``X`` (e.g. a test set).

        Every stage is run once on every row (no early exit) and each frontier
        policy is applied to those probabilities, which is what routing the
        rows through that policy would give.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        frontier : dict
            The keys of ``frontier_`` (``cost_weight``, ``accuracy``,
            ``expected_cost``, ``normalized_cost``, ``exit_rates``) on these
            rows, plus ``stage_accuracies`` and ``stage_costs`` (each stage on
            its own: its own cost in a cascade, the cost up to it for exits),
            ``oracle_accuracy``, ``oracle_cost`` and ``oracle_exit_rates``, and
            ``accuracy_at_fit``, ``cost_at_fit`` and ``exit_rates_at_fit`` for
            this estimator's own policy.

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
        y = column_or_1d(y)
        check_consistent_length(X, y)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that this estimator does "
                f"not predict (its classes_ are {self.classes_.tolist()})."
            )
        y_encoded = np.searchsorted(self.classes_, y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        weight = np.ones(len(y)) if sample_weight is None else sample_weight
        weight = weight / weight.sum()
        probas = exit_probas(self._stage_source(), X)
        correct = np.stack([np.argmax(p, axis=1) == y_encoded for p in probas])
        rows = np.arange(len(y))
        n_stages = len(probas)

        def at(policy):
            exit_stage = policy.exit_stage(probas)
            return (
                float(correct[exit_stage, rows] @ weight),
                float(self.cumulative_costs_[exit_stage] @ weight),
                np.bincount(exit_stage, weights=weight, minlength=n_stages),
            )

        points = [at(p.policy) for p in self._frontier_evaluations()]
        first_correct = np.where(
            correct.any(axis=0), np.argmax(correct, axis=0), n_stages - 1
        )
        accuracy_at_fit, cost_at_fit, rates_at_fit = at(self.policy_)
        total = self.cumulative_costs_[-1]
        return {
            "cost_weight": self.frontier_["cost_weight"].copy(),
            "accuracy": np.array([p[0] for p in points]),
            "expected_cost": np.array([p[1] for p in points]),
            "normalized_cost": np.array([p[1] for p in points]) / total,
            "exit_rates": np.stack([p[2] for p in points]),
            "stage_accuracies": correct @ weight,
            "stage_costs": self._alone_costs(self.costs_),
            "oracle_accuracy": float(correct.any(axis=0) @ weight),
            "oracle_cost": float(self.cumulative_costs_[first_correct] @ weight),
            "oracle_exit_rates": np.bincount(
                first_correct, weights=weight, minlength=n_stages
            ),
            "accuracy_at_fit": accuracy_at_fit,
            "cost_at_fit": cost_at_fit,
            "exit_rates_at_fit": rates_at_fit,
        }

    def measure_stage_seconds(self, X, *, random_state=None) -> np.ndarray:
        """Measured wall-clock seconds per row of each stage's increment on ``X``.

        The cost in seconds that ``costs="auto"`` would measure, for plotting
        or reporting in seconds when the fit used other units.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
            Rows to time on (at most 1,000, drawn at random).
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        seconds_per_row : ndarray of shape (n_stages,)
        """
        check_is_fitted(self)
        X = validate_data(self, indexable(X), reset=False, skip_check_array=True)
        return measure_exit_seconds_per_row(
            self._stage_source(), X, random_state=random_state
        )

    # -------------------------------------------------------------- predict
    def route(self, X) -> Bunch:
        """Answer each row at the exit the policy picks, and report where.

        Exit k+1 runs only on the rows that exit k deferred.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        result : Bunch
            ``proba`` (n_samples, n_classes): the answering exit's
            probabilities; ``exit_stage`` (n_samples,): 0-based index of that
            exit; ``cost`` (n_samples,): cost of the row, units of ``costs_``.
        """
        check_is_fitted(self)
        X = indexable(X)
        if hasattr(self, "n_features_in_") and np.ndim(X) == 1:
            # Fitted on rows of features, not on e.g. a list of texts.
            raise ValueError(
                "Expected 2D array, got 1D array instead. Reshape your data either "
                "using array.reshape(-1, 1) if your data has a single feature or "
                "array.reshape(1, -1) if it contains a single sample."
            )
        X = validate_data(self, X, reset=False, skip_check_array=True)
        result = route(
            self._stage_source(),
            self.policy_,
            X,
            n_classes=len(self.classes_),
            batch_size=self.batch_size,
            n_jobs=self.n_jobs,
        )
        result.cost = self.cumulative_costs_[result.exit_stage]
        return result

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the exit that answers each row.

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
        """Class of each row, from the exit that answers it.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_exit(self, X) -> np.ndarray:
        """0-based index of the exit that answers each row.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        exit_stage : ndarray of shape (n_samples,)
        """
        return self.route(X).exit_stage

    def predict_cost(self, X) -> np.ndarray:
        """Cost of answering each row: the sum of the costs of the exits it ran.

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
        for name, stage in zip(*self._members()):
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
            stage_tags = [get_tags(stage) for stage in self._members()[1]]
        except (TypeError, ValueError, AttributeError):
            # malformed estimators, or a source that is not an estimator
            return tags
        tags.input_tags.sparse = all(t.input_tags.sparse for t in stage_tags)
        tags.input_tags.allow_nan = all(t.input_tags.allow_nan for t in stage_tags)
        tags.input_tags.string = all(t.input_tags.string for t in stage_tags)
        return tags


def warn_sample_weight_unused(name, member, stacklevel=4) -> None:
    """Warn that a member cannot take the weights (routing disabled)."""
    warnings.warn(
        f"Stage {name!r} ({type(member).__name__}) does not accept "
        "sample_weight; the weights are used for the policy only. "
        "Enable metadata routing to control this per stage.",
        UserWarning,
        stacklevel=stacklevel,
    )
