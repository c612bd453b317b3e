"""AdaptiveCascadeClassifier: a learned exit policy over independent models."""

from __future__ import annotations

from inspect import signature

from sklearn.model_selection import check_cv
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.validation import check_memory

from ._base import BaseAdaptiveClassifier, warn_sample_weight_unused
from ._held_out import fit_stages_on_held_out, is_frozen
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


class AdaptiveCascadeClassifier(BaseAdaptiveClassifier):
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

    policy : str or classifier, default="linear"
        How exits are decided; every family honours ``cost_weight`` and
        ``budget``. Bolukbasi et al.'s rules learned bottom-up: ``"linear"``
        (an L2-regularised logistic regression on standardised features),
        ``"constant"`` (one decision per stage for all rows) or a classifier
        that accepts ``sample_weight``. ``"eenet"``: learned per-stage
        correctness scores with per-stage thresholds (EENet). Heuristic
        baselines with one shared threshold: ``"max_proba"``, ``"entropy"``
        (one minus normalised entropy) and ``"patience"`` (stages in a row
        that agree). See :mod:`skadaptive.policies`.

    policy_features : {"confidence", "history", "probabilities"}, default="history"
        Bolukbasi rules only. What the exit rule after stage k sees: ``"confidence"`` is stage k's max
        probability, top-1 minus top-2 margin and normalised entropy;
        ``"history"`` adds the earlier stages' max probabilities and their
        agreement with stage k; ``"probabilities"`` adds stage k's whole
        probability vector. See :func:`skadaptive.policies.policy_features`.

    tune_threshold : bool, default=True
        Bolukbasi rules only. Move each rule's cut on its learned score to the value that minimises
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
    budget_ : float or None
        The budget the policy was chosen for (``budget``), next to
        ``expected_cost_``, what it achieves on the held-out rows.
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
        **BaseAdaptiveClassifier._parameter_constraints,
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
    def _check_structure(self):
        names, _ = _check_stages(self.estimators)
        self._validate_names(names)
        return names

    def _members(self):
        return _check_stages(self.estimators)

    def _stage_names(self):
        return [name for name, _ in self.estimators]

    def _fit_held_out(self, X, y, classes, sample_weight, fit_params, measure_costs):
        names, stages = _check_stages(self.estimators)
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
        return held_out

    def _stage_source(self):
        return IndependentStages(self.estimators_)

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
                    warn_sample_weight_unused(name, stage)
            stage_fit_params.append(params)
        return stage_fit_params, {}

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
