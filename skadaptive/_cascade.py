"""AdaptiveCascadeClassifier and AdaptiveCascadeRegressor: a learned exit
policy over independent models."""

from __future__ import annotations

from typing import Any, TypeVar

from sklearn import get_config
from sklearn.frozen import FrozenEstimator
from sklearn.utils import Bunch

from ._base import ROUTED_SPLITTER, BaseAdaptiveClassifier
from ._docs import fill_regression_docs, fill_shared_docs
from ._regressor import BaseAdaptiveRegressor
from ._sklearn_private import HasMethods, StrOptions, _VisualBlock
from ._validation import tagged_type
from .stages import IndependentRegressors, IndependentStages
from .stages._regression import check_regressor

_T = TypeVar("_T", bound="_CascadeStages")


def _check_stages(estimators, regression: bool = False) -> tuple[list[str], list]:
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
        if stage is None or isinstance(stage, str):
            # scikit-learn's ensembles take "drop"; a cascade's order and
            # costs are per stage, so a stage is removed, not dropped.
            raise TypeError(
                f"Stage {name!r} is {stage!r}, not an estimator: a cascade has "
                "no dropped stages. Remove the stage from estimators (e.g. "
                "set_params(estimators=[...]) without it), costs with it."
            )
        if regression:
            _check_regression_stage(name, stage)
        elif not hasattr(stage, "predict_proba"):
            if tagged_type(stage) == "regressor":
                raise TypeError(
                    f"Stage {name!r} ({_model_name(stage)}) is a regressor; an "
                    "AdaptiveCascadeClassifier's stages are classifiers. Use "
                    "AdaptiveCascadeRegressor for regressors."
                )
            raise TypeError(
                f"Stage {name!r} ({_model_name(stage)}) has no predict_proba: the "
                "exit policy needs class probabilities from every stage. Use a "
                "classifier that has it, or wrap this one in "
                "CalibratedClassifierCV(..., ensemble=False)."
            )
    return names, stages


def _model_name(stage) -> str:
    """The stage's class, and a frozen stage's model's."""
    if isinstance(stage, FrozenEstimator):
        return f"a frozen {type(stage.estimator).__name__}"
    return type(stage).__name__


def _check_regression_stage(name, stage) -> None:
    check_regressor(
        stage,
        f"Stage {name!r}",
        "an AdaptiveCascadeRegressor's stages are regressors. Use "
        "AdaptiveCascadeClassifier for classifiers.",
    )


class _CascadeStages:
    """The members of a cascade: a list of named independent stages."""

    _regression = False

    def _sk_visual_block_(self):
        # Each stage in a box of its own, under its name (the HTML repr).
        names, stages = zip(*self.estimators)
        return _VisualBlock("parallel", list(stages), names=list(names))

    @property
    def named_estimators(self) -> Bunch:
        """The stages by name, unfitted (``named_estimators_`` once fitted),
        as in scikit-learn's ``VotingClassifier``.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from skadaptive import AdaptiveCascadeClassifier
        >>> cascade = AdaptiveCascadeClassifier(
        ...     [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())]
        ... )
        >>> cascade.named_estimators.lr
        LogisticRegression()
        """
        names, stages = _check_stages(self.estimators, self._regression)
        return Bunch(**dict(zip(names, stages)))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
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

    def set_params(self: _T, **params: Any) -> _T:
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

    def _check_structure(self):
        names, _ = _check_stages(self.estimators, self._regression)
        self._validate_names(names)
        if ROUTED_SPLITTER in names and get_config()["enable_metadata_routing"]:
            raise ValueError(
                f"A stage is named {ROUTED_SPLITTER!r}, the name under which "
                "metadata routing gives the cv splitter its metadata (groups, "
                "...), so the two would take each other's. Rename the stage."
            )
        return names

    def _members(self):
        return _check_stages(self.estimators, self._regression)

    def _stage_names(self):
        return [name for name, _ in self.estimators]

    def _budget_fix(self, first_cost) -> str:
        """What to change, besides the budget, when the first stage costs
        ``first_cost``, over it."""
        return "put a cheaper stage first"

    def _source_class(self):
        return IndependentRegressors if self._regression else IndependentStages

    def _source_maker(self):
        return self._source_class().of_members

    def _keep_fitted(self, held_out) -> None:
        names, _ = _check_stages(self.estimators, self._regression)
        self.estimators_ = held_out.estimators
        self.named_estimators_ = Bunch(**dict(zip(names, self.estimators_)))

    def _stage_source(self):
        return self._source_class()(self.estimators_, self._stage_names())


@fill_shared_docs
class AdaptiveCascadeClassifier(_CascadeStages, BaseAdaptiveClassifier):
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
        :class:`~sklearn.frozen.FrozenEstimator` stages, and stages whose
        tags say they need no fit (``requires_fit=False``, as
        :class:`~skadaptive.stages.OnnxClassifier`, trained already), are used
        as given and never refitted. A frozen stage that refuses the rows of
        ``X`` (fitted on other columns) is named.

    costs : "auto", array-like of shape (n_stages,) or dict, default="auto"
        Incremental cost per row of running each stage, in any unit (seconds,
        FLOPs, dollars). ``"auto"`` times each fitted stage's
        ``predict_proba`` on the policy rows, in seconds, at several batch
        sizes, and splits it into a part per call and a part per row (see
        ``cost_batch_size``). A dict ``{"per_call": ..., "per_row": ...}``
        gives both parts. Measured costs vary a little between fits; pass
        ``{"per_call": costs_per_call_, "per_row": costs_per_row_}`` back as
        ``costs`` to make refits reproducible.

    skips : bool, default=False
        Whether a row going on after a stage may jump over later stages: the
        policy then chooses among answering, the next stage and any later
        one (Bolukbasi et al.'s network selection), and a row pays only for
        the stages it runs (:meth:`predict_path`). The jumps are learned
        bottom-up with the exit rules; a policy that skips is kept only where
        it does better than the plain one. Needs ``answer="stage"``.

    router : None, "auto" or classifier, default=None
        Routing before any stage: a cheap classifier on the raw features
        that chooses, for each row, the first stage to run (rows it sends
        to a later stage pay for none of the earlier ones). ``"auto"`` is a
        standardised logistic regression (numeric features only); a
        classifier given is cloned, and its ``fit`` (or its last step's)
        must accept ``sample_weight``. It is learned on the policy rows
        after the exit policy, as one more decision of the same reduction
        (each start's risk is what the learned policy does with the row
        from there), and kept only where its cross-fitted figures beat the
        policy without it (``router_search_``). Its own cost is the first
        entry of ``costs`` when ``costs`` are numbers (``n_stages + 1`` of
        them), else measured. Needs ``answer="stage"``.

    {shared_parameters}

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted stages (with ``refit=False`` and an int ``cv``, each as its
        fold models, see ``refit``). An ``XGBClassifier`` stage (alone or a
        pipeline's last step, the whole pipeline then), which takes the labels
        ``0 .. n_classes - 1`` only, is fitted on the indices of the labels in
        ``classes_``, as ``StackingClassifier`` fits its estimators: its
        ``predict`` answers indices (``classes_[stage.predict(X)]`` are the
        labels); every other stage is fitted on the labels as given.
    named_estimators_ : Bunch
        The fitted stages by name.
    classes_ : ndarray of shape (n_classes,)
    costs_ : ndarray of shape (n_stages,)
        Incremental cost per row of each stage, given or measured; measured
        costs include the per-call part spread over a batch of
        ``cost_batch_size_`` rows.
    cumulative_costs_ : ndarray of shape (n_stages,)
        Cost per row of answering at each stage (when every row of the batch
        answers there).
    router_ : Router or None
        The router kept (``policy_.router``); None without ``router=`` or
        where it did not beat the policy without it.
    router_cost_ : float
        Cost per row of the router kept (0 without one), in the units of
        ``costs_``; every row pays it, and ``predict_cost``,
        ``expected_cost_`` and ``frontier_`` count it. A router that starts
        every row at the same stage is not run, and costs 0.
    router_search_ : dict or None
        With ``router=``: ``router`` (the row labels, ``"none"`` and
        ``"learned"``), ``expected_accuracy`` and ``expected_cost`` without
        and with the router, cross-fitted on the same folds of the policy rows
        with the policy learned again in each (so the "without" figures are
        another estimate of the policy's own ``expected_*``, which can differ
        by several percent on a thousand rows);
        ``router_cost`` (what a learned router costs a row where it runs,
        in calls of ``cost_batch_size_`` rows: given, or measured; NaN with
        ``costs="auto"`` where the router learned at fit starts every row at
        one stage, so that nothing ran to be timed, until a point of
        ``frontier_`` learns one and times it), ``router_cost_per_call`` and
        ``router_cost_per_row`` (its two parts, 0 per call for a cost given
        as a number), ``kept`` and ``reason`` (why it was kept or not). None
        without ``router=``.
    {shared_attributes}

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
        "skips": ["boolean"],
        "router": [None, StrOptions({"auto"}), HasMethods(["fit", "predict"])],
        **BaseAdaptiveClassifier._parameter_constraints,
    }

    def __init__(
        self,
        estimators,
        *,
        costs="auto",
        skips=False,
        router=None,
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
        self.estimators = estimators
        self.costs = costs
        self.skips = skips
        self.router = router
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


@fill_regression_docs
class AdaptiveCascadeRegressor(_CascadeStages, BaseAdaptiveRegressor):
    """Answer easy rows with cheap regressors and defer hard ones, by a learned
    policy.

    Stages run from the cheapest to the most expensive. After each stage but
    the last, a learned exit rule looks at what the stages so far predicted
    (each prediction, how much consecutive stages disagree, and a stage's own
    uncertainty where it gives one) and either answers with the current
    stage's prediction or defers the row; the next stage runs only on
    deferred rows. The rules minimise, on held-out rows,
    ``loss + cost_weight * cost`` with the loss on a learned scale of ``y``
    (Bolukbasi et al., 2017, whose reduction holds for any per-row loss), or
    minimise the error under an average cost ``budget``.

    Parameters
    ----------
    estimators : list of (str, estimator) tuples
        The stages, ordered from the cheapest to the most expensive; each a
        single-output regressor. Unfitted stages are cloned and fitted;
        :class:`~sklearn.frozen.FrozenEstimator` stages, and stages whose tags
        say they need no fit (as :class:`~skadaptive.stages.OnnxRegressor`),
        are used as given and never refitted; scikit-learn's own
        ``GaussianProcessRegressor``, tagged so because it predicts from its
        prior before a fit, is fitted like any other stage. A frozen stage
        that refuses the rows of ``X`` (fitted on other columns) is named. Each
        stage's uncertainty is the standard deviation of
        ``predict(X, return_std=True)`` where it offers it, the spread of the
        trees of a random or extra-trees forest, else 0 (see
        :func:`~skadaptive.stages.regression_answers`).

    costs : "auto", array-like of shape (n_stages,) or dict, default="auto"
        Incremental cost per row of running each stage, in any unit.
        ``"auto"`` times each fitted stage's answers on the policy rows, in
        seconds, at several batch sizes, and splits it into a part per call
        and a part per row (see ``cost_batch_size``). A dict
        ``{"per_call": ..., "per_row": ...}`` gives both parts.

    skips : bool, default=False
        Whether a row going on after a stage may jump over later stages: the
        policy then chooses among answering, the next stage and any later
        one (Bolukbasi et al.'s network selection), and a row pays only for
        the stages it runs (:meth:`predict_path`). The jumps are learned
        bottom-up with the exit rules; a policy that skips is kept only where
        it does better than the plain one.

    router : None, "auto" or classifier, default=None
        Routing before any stage: a cheap classifier on the raw features
        that chooses, for each row, the first stage to run (rows it sends
        to a later stage pay for none of the earlier ones). ``"auto"`` is a
        standardised logistic regression (numeric features only); a
        classifier given is cloned, and its ``fit`` (or its last step's)
        must accept ``sample_weight``. It is learned on the policy rows
        after the exit policy, as one more decision of the same reduction
        (each start's risk is what the learned policy does with the row
        from there), and kept only where its cross-fitted figures beat the
        policy without it (``router_search_``). Its own cost is the first
        entry of ``costs`` when ``costs`` are numbers (``n_stages + 1`` of
        them), else measured.

    {shared_parameters}

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted stages (with ``refit=False`` and an int ``cv``, each as its
        fold models, see ``refit``).
    named_estimators_ : Bunch
        The fitted stages by name.
    costs_ : ndarray of shape (n_stages,)
        Incremental cost per row of each stage, given or measured.
    cumulative_costs_ : ndarray of shape (n_stages,)
        Cost per row of answering at each stage.
    router_ : Router or None
        The router kept; None without ``router=`` or where it did not beat
        the policy without it.
    router_cost_ : float
        Cost per row of the router kept (0 without one, and for a router that
        starts every row at the same stage, which is not run).
    router_search_ : dict or None
        With ``router=``: ``router`` (``"none"``, ``"learned"``),
        ``expected_error`` and ``expected_cost`` without and with the router
        (cross-fitted on the same folds, the policy learned again in each),
        ``router_cost`` with its parts ``router_cost_per_call`` and
        ``router_cost_per_row``, ``kept`` and ``reason``.
    {shared_attributes}

    See Also
    --------
    AdaptiveCascadeClassifier : The same for classifiers.
    EarlyExitRegressor : Exits over one shared computation (a tree ensemble).
    sklearn.ensemble.StackingRegressor : Combines every stage on every row.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from sklearn.linear_model import Ridge
    >>> from skadaptive import AdaptiveCascadeRegressor
    >>> X, y = make_friedman1(n_samples=1500, noise=0.5, random_state=0)
    >>> cascade = AdaptiveCascadeRegressor(
    ...     [("ridge", Ridge()),
    ...      ("forest", RandomForestRegressor(n_estimators=50, random_state=0))],
    ...     costs=[1.0, 50.0], budget=20.0, cv=3,
    ... ).fit(X[:1000], y[:1000])
    >>> bool(cascade.policy_rows_cost_ <= 20.0)
    True
    >>> bool(cascade.score(X[1000:], y[1000:]) > 0.7)
    True
    >>> exit_stage = cascade.predict_exit(X[1000:])   # 0: answered by "ridge"
    """

    _regression = True

    _parameter_constraints: dict = {
        "estimators": [list],
        "skips": ["boolean"],
        "router": [None, StrOptions({"auto"}), HasMethods(["fit", "predict"])],
        **BaseAdaptiveRegressor._parameter_constraints,
    }

    def __init__(
        self,
        estimators,
        *,
        costs="auto",
        skips=False,
        router=None,
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
        self.estimators = estimators
        self.costs = costs
        self.skips = skips
        self.router = router
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
