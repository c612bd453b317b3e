"""Routing before any stage: the first stage each row runs, from its raw features.

A router is the policy's first decision, taken before any stage has run: a
cheap classifier on the raw features that sends a row straight to the stage
where it is best started (an LLM router sends a query to a small or a large
model before running either). It is learned last, bottom-up as the jumps
are: the risk of starting a row at stage ``j`` is ``loss + cost_weight *
cost`` of what the already-learned policy (exits and jumps) does with it
from ``j``; the router is a cost-sensitive choice among the starts, reduced
to a weighted multiclass problem (label: the start of least risk; weight:
the spread of the risks, what a wrong choice costs).

What a rule sees. A row that starts at stage ``j`` has no answers from the
stages before ``j``; it is given stage ``j``'s answer there (its first answer
*carried back*), so that every rule sees a history of the same shape, in the
engine as in the offline walk (:func:`carried_back`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array, has_fit_parameter

from .._sklearn_private import _num_samples, _safe_indexing
from .._typing import Rows
from ._policy import (
    CascadePolicy,
    answer_costs,
    row_costs,
    stage_correct,
    with_thresholds,
)
from ._selection import (
    _clear_gain,
    _row_groups,
    deal_groups,
    grouped_mean_and_error,
    held_out_folds,
    search_groups,
)
from ._skips import SkipPolicy, from_positions, path_costs, raised_prices
from ._thresholds import BUDGET_RTOL, ThresholdProblem, budget_thresholds


@dataclass
class Router:
    """Chooses, for each row, the first stage to run from its raw features.

    Parameters
    ----------
    targets : ndarray of int
        The stages a row may start at, ascending (a learned router keeps
        those it chooses among).
    learner : fitted classifier or None, default=None
        Predicts the first stage from the rows' features (the same ``X`` as
        the stages get); None: every row starts at ``constant``.
    constant : int, default=0
        The first stage of every row when there is no learner.
    by_position : bool, default=False
        Whether the learner predicts positions in ``targets`` (0 for
        ``targets[0]``), as learned routers do, rather than the stages.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import Router
    >>> Router(np.array([0, 2]), constant=2).first_stages(np.zeros((3, 4))).tolist()
    [2, 2, 2]
    """

    targets: np.ndarray
    learner: object | None = None
    constant: int = 0
    by_position: bool = False

    def first_stages(self, X: Rows) -> np.ndarray:
        """The first stage each row runs.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_rows, ...)

        Returns
        -------
        first_stage : ndarray of int of shape (n_rows,)
        """
        n_rows = _num_samples(X)
        if self.learner is None:
            return np.full(n_rows, self.constant, dtype=np.intp)
        try:
            predicted = self.learner.predict(X)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The router could not choose the first stages of these rows "
                f"({exc}). It was fitted on the policy rows' features as the "
                "stages got them: pass X of the same kind (dense or sparse, the "
                "same columns) as at fit."
            ) from exc
        if self.by_position:
            predicted = from_positions(predicted, self.targets, "router")
        return check_first_stages(predicted, n_rows, self.targets)


def check_first_stages(first_stage, n_rows: int, targets) -> np.ndarray:
    """A router's choice: one of its target stages per row, or a clear error."""
    first_stage = np.asarray(first_stage)
    if (
        first_stage.shape != (n_rows,)
        or not np.issubdtype(first_stage.dtype, np.integer)
        or not np.isin(first_stage, targets).all()
    ):
        raise ValueError(
            f"The router must give, for each of the {n_rows} rows, a first stage "
            f"among {np.asarray(targets).tolist()}; got dtype {first_stage.dtype}, "
            f"shape {first_stage.shape}"
            + (f", values {np.unique(first_stage)[:8]}" if first_stage.size else "")
            + "."
        )
    return first_stage.astype(np.intp, copy=False)


def carried_back(stage_probas: list[np.ndarray], start: np.ndarray) -> list:
    """Every stage's answers as the rules see them when rows start late.

    A row starting at stage ``j`` is given stage ``j``'s answer at the stages
    before ``j`` (which it never runs); rows starting at 0 are unchanged.

    Parameters
    ----------
    stage_probas : list of ndarray of shape (n_rows, n_classes)
    start : ndarray of int of shape (n_rows,)

    Returns
    -------
    arrived : list of ndarray of shape (n_rows, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._router import carried_back
    >>> probas = [np.array([[0.5, 0.5], [0.6, 0.4]]), np.array([[1.0, 0], [0, 1.0]])]
    >>> carried_back(probas, np.array([0, 1]))[0].tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """
    start = np.asarray(start, dtype=np.intp)
    arrived = []
    for stage, answers in enumerate(stage_probas):
        late = np.flatnonzero(start > stage)
        if len(late):
            answers = np.array(answers, dtype=np.float64, copy=True)
            for first in np.unique(start[late]):
                rows = late[start[late] == first]
                answers[rows] = stage_probas[first][rows]
        arrived.append(answers)
    return arrived


def as_skip_policy(policy: CascadePolicy, router: Router | None = None) -> SkipPolicy:
    """``policy`` as a :class:`SkipPolicy` (same rules and jumps), with ``router``."""
    jumps = list(policy.jumps) if policy.skips else [None] * len(policy.rules)
    return SkipPolicy(list(policy.rules), jumps, router=router)


def routed_walk(policy: CascadePolicy, stage_probas: list, X=None, start=None):
    """Where each row answers and which stages it runs, the router included.

    Parameters
    ----------
    policy : CascadePolicy
    stage_probas : list of ndarray of shape (n_rows, n_classes)
        Every stage's answers for the rows.
    X : array-like of shape (n_rows, ...), default=None
        The rows' features, for a policy with a router.
    start : ndarray of int of shape (n_rows,), default=None
        The first stages, if known (else the router's choice on ``X``).

    Returns
    -------
    exit_stage : ndarray of shape (n_rows,)
    ran : ndarray of bool of shape (n_stages, n_rows)
        Stages first, as the policies' walks give it (the transpose of
        ``predict_path(X)`` and ``route(X).ran``).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import HeuristicRule, Router, SkipPolicy, routed_walk
    >>> policy = SkipPolicy([HeuristicRule("max_proba", 0.8)], [None],
    ...                     router=Router(np.array([0, 1]), constant=1))
    >>> probas = [np.array([[0.9, 0.1]]), np.array([[0.3, 0.7]])]
    >>> exit_stage, ran = routed_walk(policy, probas, np.zeros((1, 3)))
    >>> exit_stage.tolist(), ran.ravel().tolist()   # started at stage 1
    ([1], [False, True])
    """
    router = getattr(policy, "router", None)
    if start is None and router is not None:
        start = router.first_stages(X)
    if start is None:
        return policy.walk(stage_probas)
    skip = policy if policy.skips else as_skip_policy(policy)
    return skip.walk(carried_back(stage_probas, start), start)


def start_risks(
    policy: CascadePolicy,
    stage_probas: list,
    stage_loss: np.ndarray,
    cumulative_cost: np.ndarray,
    cost_weight: float,
    targets,
) -> np.ndarray:
    """Risk of starting each row at each of ``targets``, (n_targets, n_rows).

    ``loss + cost_weight * cost`` of what ``policy`` does with the row from
    that stage on; the cost is that of the stages it runs.
    """
    n_rows = stage_probas[0].shape[0]
    rows = np.arange(n_rows)
    risks = []
    for first in targets:
        exit_stage, ran = routed_walk(
            policy, stage_probas, start=np.full(n_rows, first, dtype=np.intp)
        )
        cost = row_costs(ran, cumulative_cost)
        risks.append(stage_loss[exit_stage, rows] + cost_weight * cost)
    return np.stack(risks)


def router_learner(router, sparse: bool = False, allow_nan: bool = False):
    """An unfitted learner for ``router`` ("auto": standardised logistic
    regression; scaled without centring for sparse features, after a median
    imputer where the stages take missing values)."""
    if not isinstance(router, str):
        return clone(router)
    steps = [StandardScaler(with_mean=not sparse), LogisticRegression(max_iter=1000)]
    if allow_nan:
        steps.insert(0, SimpleImputer(strategy="median", keep_empty_features=True))
    return make_pipeline(*steps)


def _fit_weighted(learner, X, y, sample_weight):
    """Fit with sample weights: the learner's own, or, for a Pipeline, those
    of every step that takes them (its last step must)."""
    if has_fit_parameter(learner, "sample_weight"):
        return learner.fit(X, y, sample_weight=sample_weight)
    if isinstance(learner, Pipeline) and has_fit_parameter(
        learner.steps[-1][1], "sample_weight"
    ):
        steps = [
            (name, step)
            for name, step in learner.steps
            if step not in (None, "passthrough")
            and has_fit_parameter(step, "sample_weight")
        ]
        if get_config()["enable_metadata_routing"]:
            # The learner is a clone: its steps can be asked for the weights.
            for _, step in steps:
                step.set_fit_request(sample_weight=True)
            return learner.fit(X, y, sample_weight=sample_weight)
        weighted = {f"{name}__sample_weight": sample_weight for name, _ in steps}
        return learner.fit(X, y, **weighted)
    if isinstance(learner, GridSearchCV | RandomizedSearchCV) and has_fit_parameter(
        learner.estimator, "sample_weight"
    ):
        # A search passes fit's parameters on to its estimator (with metadata
        # routing, once the estimator, a clone here, asks for them).
        if get_config()["enable_metadata_routing"]:
            learner.estimator.set_fit_request(sample_weight=True)
            if hasattr(learner.estimator, "set_score_request"):
                # Scored without the weights, as without routing.
                learner.estimator.set_score_request(sample_weight=False)
        return learner.fit(X, y, sample_weight=sample_weight)
    raise TypeError(
        f"The router {type(learner).__name__} does not accept sample_weight in "
        "fit: a router is learned as a weighted choice (a row's weight is what "
        "a wrong first stage costs it). Pass a classifier that accepts "
        "sample_weight, a Pipeline ending in one, or a search over one."
    )


def fit_router(X, risks, targets, weight, learner, allow_nan=False) -> Router:
    """The first stage of each row, learned from its risks of each start.

    A weighted multiclass problem on the raw features: each row's label is
    its start of least risk (ties to the earlier stage), its weight the
    spread of its risks. Without two different labels the router is the
    constant start of least risk; a learned router that starts every one of
    these rows at the same stage is that constant start.

    Parameters
    ----------
    X : array-like of shape (n_rows, ...)
    risks : ndarray of shape (n_targets, n_rows)
    targets : ndarray of int
    weight : ndarray of shape (n_rows,)
    learner : "auto" or classifier
    allow_nan : bool, default=False
        Whether the stages take missing values (then so does ``"auto"``).

    Returns
    -------
    router : Router
    """
    targets = np.asarray(targets, dtype=np.intp)
    constant = Router(targets, constant=int(targets[np.argmin(risks @ weight)]))
    best = np.argmin(risks, axis=0)
    spread = weight * (risks.max(axis=0) - risks.min(axis=0))
    informative = np.flatnonzero(spread > 0)
    if len(np.unique(best[informative])) < 2:
        return constant
    auto = isinstance(learner, str)
    learner = router_learner(learner, sparse=sp.issparse(X), allow_nan=allow_nan)
    label_weight = spread[informative] * (weight.sum() / spread.sum())
    try:
        # Labels 0..m-1: the positions among the starts that are best for
        # some row (a learner such as XGBoost's wants no gaps).
        starts, labels = np.unique(best[informative], return_inverse=True)
        _fit_weighted(
            learner, _safe_indexing(X, informative), labels.ravel(), label_weight
        )
    except (TypeError, ValueError) as exc:
        if "does not accept sample_weight" in str(exc):
            raise
        if auto:
            raise ValueError(
                f"The router could not be fitted on the rows' features ({exc}). "
                "router='auto' is a standardised logistic regression on X as "
                "the stages get it (after a median imputer where the stages "
                "take missing values) and needs numbers; pass router= a "
                "classifier (or Pipeline) that encodes your features."
            ) from exc
        raise ValueError(
            f"The router {type(learner).__name__} could not be fitted ({exc}). "
            "It is fitted on X as the stages get it, with sample_weight, to "
            f"labels 0..{len(starts) - 1} (the position of each row's best "
            f"first stage among {targets[starts].tolist()})."
        ) from exc
    router = Router(targets[starts], learner, by_position=True)
    first = router.first_stages(X)
    if len(first) and (first == first[0]).all():
        # It starts every row it learned from at one stage: that is the
        # constant start, which is not run and costs nothing.
        return Router(targets, constant=int(first[0]))
    return router


def row_keys(X) -> np.ndarray:
    """A number per row, equal for equal rows whatever holds them.

    The same numbers give the same key in an array, a DataFrame, a list or
    a sparse matrix (a row's nonzero positions and values are hashed); rows
    of other things (texts, mixed columns), by their ``repr``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skadaptive.policies._router import row_keys
    >>> X = np.array([[0.0, 1.5], [2.0, 0.0], [0.0, 1.5]])
    >>> keys = row_keys(X)
    >>> bool(keys[0] == keys[2] != keys[1])
    True
    >>> bool((row_keys(sp.csr_matrix(X)) == keys).all())
    True
    """

    def key(data: bytes) -> float:
        # 48 bits: exact as a float64, which the fold grouping compares.
        return float(int.from_bytes(hashlib.blake2b(data, digest_size=6).digest()))

    try:
        values = check_array(
            X,
            accept_sparse="csr",
            dtype=np.float64,
            ensure_all_finite=False,
            ensure_2d=True,
            ensure_min_samples=0,
        )
    except (TypeError, ValueError):
        rows = X.itertuples(index=False) if hasattr(X, "itertuples") else X
        return np.array(
            [key(repr(tuple(np.ravel(r)) if np.ndim(r) else r).encode()) for r in rows]
        )
    if sp.issparse(values):
        values = values.copy()
        values.eliminate_zeros()
        values.sort_indices()
        spans = zip(values.indptr[:-1], values.indptr[1:])
        return np.array(
            [
                key(
                    values.indices[a:b].astype(np.int64).tobytes()
                    + values.data[a:b].tobytes()
                )
                for a, b in spans
            ]
        )
    keys = []
    for row in values:
        nonzero = np.flatnonzero(row)
        keys.append(key(nonzero.astype(np.int64).tobytes() + row[nonzero].tobytes()))
    return np.array(keys)


#: Folds of the cross-fitting that estimates a router's figures.
_ROUTER_FOLDS = 5
#: Times a router's price is raised (fourfold) for a budget it cannot meet.
_PRICE_RAISES = 6


def routed_policy(
    policy,
    search,
    rows,
    X_rows,
    price,
    normalized_budget,
    learner,
    cumulative,
    allow_nan=False,
    router=None,
):
    """``policy`` with a router learned on ``rows`` (and, for a budget, its exit
    thresholds chosen again on the rows' routed paths).

    For a budget, a router learned here at ``price`` that starts so many rows
    at dear stages that no thresholds meet the budget is learned again at a
    price raised fourfold, up to :data:`_PRICE_RAISES` times, until some do;
    a ``router`` given is kept as it is."""
    probas = [p[rows] for p in search.stage_probas]
    loss = search.stage_risk(0.0)[:, rows]
    budget_loss = search.budget_loss()[:, rows]
    weight = search.weight[rows]
    targets = np.arange(len(probas))

    def learned_at(cost_weight):
        risks = start_risks(policy, probas, loss, cumulative, cost_weight, targets)
        return fit_router(X_rows, risks, targets, weight, learner, allow_nan)

    def thresholds_for(router):
        # The best thresholds found, and whether they meet the budget (rows
        # started at a dear stage pay for it whatever the thresholds).
        start = router.first_stages(X_rows)
        _, ran, scores = as_skip_policy(policy, router).walk(
            carried_back(probas, start), start, decide=False
        )
        found = budget_thresholds(
            ThresholdProblem(scores, budget_loss, path_costs(ran, cumulative), weight),
            normalized_budget,
        )
        met = found is not None and found[2] <= normalized_budget * (1 + BUDGET_RTOL)
        return found, met

    learn_here = router is None
    if normalized_budget is None:
        return as_skip_policy(policy, learned_at(price) if learn_here else router)
    for raised in raised_prices(price, _PRICE_RAISES if learn_here else 0):
        if learn_here:
            router = learned_at(raised)
        found, met = thresholds_for(router)
        if met:
            break
    routed = as_skip_policy(policy, router)
    if found is None:
        return routed
    return with_thresholds(routed, found[0])


def row_error(rows, values) -> float:
    """Standard error of the weighted mean of a per-row figure over the
    policy rows of :func:`learn_router` (equal rows counted once, with their
    summed weight: weight k is k copies)."""
    return grouped_mean_and_error(
        values, rows.weight, rows.group_of_row, rows.first_of_group
    )[1]


def clearly_better(rows, gain) -> bool:
    """Whether a paired per-row gain (positive: better) is above one standard
    error of it on average: a difference of a row or two is noise."""
    return bool(
        _clear_gain(gain, rows.weight, rows.group_of_row, rows.first_of_group)[1]
    )


def learn_router(
    policy: CascadePolicy,
    search,
    X,
    *,
    learner,
    price: float,
    normalized_budget: float | None,
    cumulative_cost: np.ndarray,
    random_state=None,
    relearn=None,
    allow_nan=False,
    router=None,
) -> Bunch:
    """A router for ``policy``, with its figures out of sample.

    The router (and, for a budget, the exit thresholds on the routed paths)
    is learned on all the policy rows; its figures are cross-fitted: each
    row is routed and answered by a policy (``relearn``), a router and
    thresholds all learned without it.

    Parameters
    ----------
    policy : CascadePolicy
        The policy learned without a router (exits, and jumps if any).
    search : PolicySearch
        The policy rows: ``stage_probas``, ``weight``, ``stage_risk``,
        ``evaluate_exits``.
    X : array-like of shape (n_rows, ...)
        The policy rows' features, as the stages get them.
    learner : "auto" or classifier
    price : float
        The cost weight at which starts are compared (loss per unit of
        normalised cost).
    normalized_budget : float or None
        For a budget (as a fraction of ``cumulative_cost[-1]``, the router's
        own cost taken out): the exit thresholds are chosen again for it.
    cumulative_cost : ndarray of shape (n_stages,)
        Normalised cumulative cost of the stages.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds.
    relearn : callable, default=None
        ``relearn(rows)``: the policy without a router learned as ``policy``
        was, on those rows only (for the cross-fitting); None keeps
        ``policy`` in every fold (its rules' figures are then in sample).
    allow_nan : bool, default=False
        Whether the stages take missing values (then so does ``"auto"``).
    router : Router, default=None
        The router learned on all the rows, if it is already (the folds
        learn their own).

    Returns
    -------
    result : Bunch
        ``policy`` (a :class:`SkipPolicy` with the router), ``in_sample`` and
        ``out_of_sample`` (:class:`PolicyEvaluation` of it on the policy rows,
        costs without the router's own), and ``without_router``: the same
        cross-fitting's figures of the policies without their routers (on
        the same folds, so that the two compare like with like); and
        ``rows``: for ``"with"`` and ``"without"``, each row's cross-fitted
        ``loss`` (minus :func:`stage_correct`: -1 where a classifier's answer
        is right and 0 where it is wrong, a regressor's scaled loss; the
        error of the figures compared, whatever loss the policy minimises)
        and normalised ``cost`` (the router's own not counted), with
        ``group_of_row`` and ``first_of_group`` (equal rows, which share a
        fold and so an answer, form a group) and ``weight``, to compare the
        two row by row (:func:`clearly_better`).
    """
    n_rows = search.stage_probas[0].shape[0]
    everything = np.arange(n_rows)

    def learned_on(rows):
        if relearn is not None and len(rows) < n_rows:
            return relearn(rows)
        return policy

    def routed(learned, rows):
        everything = len(rows) == n_rows
        return routed_policy(
            learned,
            search,
            rows,
            _safe_indexing(X, rows),
            price,
            normalized_budget,
            learner,
            cumulative_cost,
            allow_nan,
            router if everything else None,
        )

    final = routed(policy, everything)
    exit_stage, ran = routed_walk(final, search.stage_probas, X)
    in_sample = search.evaluate_exits(final, exit_stage, price, ran)
    # Rows of a fold with nothing else to learn from (a handful of distinct
    # rows) keep their in-sample figures.
    plain_exits, plain_runs = policy.walk(search.stage_probas)
    exits = {"with": exit_stage.copy(), "without": plain_exits}
    runs = {"with": ran.copy(), "without": plain_runs}
    # Equal rows go to one fold, so that weight k on a row is k copies of it
    # (rows are told apart by their features too: rows with the same
    # answers and other features may be routed apart).
    n_splits = min(_ROUTER_FOLDS, n_rows)
    groups, group_of_row = _row_groups(
        [*search.stage_probas, row_keys(X)[:, None]],
        search.y_encoded,
        search_groups(search),
        search.weight,
    )
    fold = deal_groups(group_of_row, groups, search.weight, n_splits, random_state)
    # With fewer distinct rows of positive weight than folds none is held
    # out, and the figures stay in sample, as the policy's own do.
    for k in held_out_folds(fold, search.weight, n_splits):
        fit_rows, held_rows = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        learned = learned_on(fit_rows)
        probas = [p[held_rows] for p in search.stage_probas]
        X_held = _safe_indexing(X, held_rows)
        for name, decider in (
            ("without", learned),
            ("with", routed(learned, fit_rows)),
        ):
            exits[name][held_rows], runs[name][:, held_rows] = routed_walk(
                decider, probas, X_held
            )
    # The error of the figures compared (1 - accuracy; a regressor's scaled
    # loss), whatever loss the policy minimises (log_loss, say).
    correct = stage_correct(search.stage_probas, search.y_encoded, search.loss)
    error = -correct.astype(np.float64)
    rows = Bunch(
        group_of_row=group_of_row,
        first_of_group=np.unique(group_of_row, return_index=True)[1],
        weight=search.weight,
        loss={name: error[exits[name], everything] for name in exits},
        cost={
            name: answer_costs(exits[name], runs[name], cumulative_cost)
            for name in exits
        },
    )
    return Bunch(
        policy=final,
        rows=rows,
        in_sample=in_sample,
        out_of_sample=search.evaluate_exits(None, exits["with"], price, runs["with"]),
        without_router=search.evaluate_exits(
            None, exits["without"], price, runs["without"]
        ),
    )
