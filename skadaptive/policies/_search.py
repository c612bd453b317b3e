"""The factory of policy searches: one ``policy`` parameter, one family's search.

Every family answers the same questions on held-out stage probabilities (see
:class:`~skadaptive.policies.PolicySearch`); :func:`make_policy_search`
returns the object that answers them for the family the estimators'
``policy`` parameter names, and :func:`check_policy` says what is wrong with
a value that names none.
"""

from __future__ import annotations

import numpy as np

from .._typing import Estimator
from .._warnings import warn
from ._bottom_up import POLICY_FAMILIES, BolukbasiSearch, check_policy_learner
from ._eenet import EENetSearch
from ._features import HEURISTICS, REGRESSION_HEURISTICS, _check_feature_set
from ._heuristics import HeuristicSearch
from ._losses import is_regression_loss
from ._policy_search import PolicySearch

#: Every value of the classifiers' ``policy`` parameter that is a string.
POLICIES = (*POLICY_FAMILIES, "eenet", *HEURISTICS)

#: Every value of the regressors' ``policy`` parameter that is a string.
REGRESSION_POLICIES = (*POLICY_FAMILIES, "eenet", *REGRESSION_HEURISTICS)


def check_policy(policy: str | type[PolicySearch] | Estimator) -> None:
    """Raise a clear error unless ``policy`` names a family or is a usable learner.

    Parameters
    ----------
    policy : str, classifier or PolicySearch subclass
        One of :data:`POLICIES` or :data:`REGRESSION_POLICIES`, a classifier
        whose ``fit`` accepts
        ``sample_weight`` (the learner of Bolukbasi rules), or a subclass of
        :class:`PolicySearch` (a family of your own).

    Examples
    --------
    >>> from skadaptive.policies import check_policy
    >>> check_policy("eenet")
    >>> check_policy("greedy")
    Traceback (most recent call last):
    ...
    ValueError: policy must be one of ('linear', 'constant', 'eenet', ...
    """
    if isinstance(policy, str):
        if policy not in POLICIES + REGRESSION_HEURISTICS:
            raise ValueError(
                f"policy must be one of {POLICIES} (classifiers) or "
                f"{REGRESSION_POLICIES} (regressors), a classifier or a "
                f"PolicySearch subclass; got {policy!r}."
            )
        return
    if isinstance(policy, type) and issubclass(policy, PolicySearch):
        return
    check_policy_learner(policy)


def make_policy_search(
    policy: str | type[PolicySearch] | Estimator,
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    cumulative_cost: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    loss: str = "zero_one",
    feature_set: str = "history",
    tune_threshold: bool = True,
    shared_threshold: bool = False,
) -> PolicySearch:
    """The search object of one policy family over held-out stage probabilities.

    Parameters
    ----------
    policy : {"linear", "constant", "eenet", "max_proba", "entropy", \
            "patience", "disagreement", "uncertainty"}, classifier or \
            PolicySearch subclass
        ``"linear"``, ``"constant"`` or a classifier: Bolukbasi et al.'s rules
        of that family, learned bottom-up. ``"eenet"``: learned correctness
        scores with per-exit thresholds. ``"max_proba"``, ``"entropy"``,
        ``"patience"`` (classification), ``"disagreement"``,
        ``"uncertainty"`` (regression): a heuristic score with one shared
        threshold. A subclass of :class:`PolicySearch`: a family of your own, built with
        ``(stage_probas, y_encoded, cumulative_cost, sample_weight, loss)``.
    stage_probas : list of ndarray of shape (n_samples, n_classes)
        Held-out probabilities of every stage for the same rows; for a
        regression ``loss``, arrays of shape (n_samples, 2): each stage's
        scaled prediction and uncertainty.
    y_encoded : ndarray of shape (n_samples,)
        Class indices, or the scaled targets.
    cumulative_cost : ndarray of shape (n_stages,)
        Cost of answering at each stage, normalised so that the last is 1.
    sample_weight : ndarray of shape (n_samples,), default=None
    loss : {"zero_one", "log_loss", "squared_error", "absolute_error"}, \
            default="zero_one"
        Loss in the objective ``loss + cost_weight * cost``.
    feature_set : {"confidence", "history", "probabilities", "classes"}, \
            default="history"
        Features of the Bolukbasi rules (ignored by the other families); see
        :func:`~skadaptive.policies.policy_features` (``"classes"`` for
        classifiers only).
    tune_threshold : bool, default=True
        Whether the Bolukbasi rules' cuts are tuned (ignored by the others).
    shared_threshold : bool, default=False
        Heuristics only: for a budget, one threshold shared by every stage
        (the form of the papers that introduced them) instead of one per
        stage. Their ``cost_weight`` fits always share one threshold.

    Returns
    -------
    search : PolicySearch
        ``fit(cost_weight)``, ``at_cost_weight(cost_weight)``,
        ``frontier(cost_weights)`` and ``within_budget(normalized_budget)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import make_policy_search
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> cheap = np.where(rng.random((300, 1)) < 0.5, 0.5, np.eye(2)[y] * 0.8 + 0.1)
    >>> costly = np.eye(2)[y] * 0.9 + 0.05
    >>> search = make_policy_search("max_proba", [cheap, costly], y,
    ...                             np.array([0.1, 1.0]))
    >>> chosen = search.within_budget(0.6)
    >>> bool(chosen.normalized_cost <= 0.6), chosen.accuracy
    (True, 1.0)
    """
    check_policy(policy)
    args = (stage_probas, y_encoded, cumulative_cost, sample_weight, loss)
    if isinstance(policy, type):
        return policy(*args)
    regression = is_regression_loss(loss)
    heuristics = REGRESSION_HEURISTICS if regression else HEURISTICS
    if isinstance(policy, str) and policy in HEURISTICS + REGRESSION_HEURISTICS:
        if policy not in heuristics:
            raise ValueError(
                f"policy={policy!r} is a heuristic for "
                f"{'classifiers' if regression else 'regressors'}; with "
                f"loss={loss!r} use one of {heuristics} or a learned family."
            )
        if policy == "patience" and len(stage_probas) == 2:
            # Here, not in the search: its copies on the cross-fitting folds
            # would repeat it.
            warn(
                "policy='patience' with two stages sends every row the same way: "
                "the first stage has no earlier stage to agree with, so all rows "
                "exit there or all go on. Use 'max_proba', 'entropy' or a learned "
                "policy for two stages.",
                UserWarning,
            )
        return HeuristicSearch(*args, kind=policy, shared_threshold=shared_threshold)
    if isinstance(policy, str) and policy == "eenet":
        return EENetSearch(*args)
    _check_feature_set(feature_set, regression)
    return BolukbasiSearch(
        *args, learner=policy, feature_set=feature_set, tune_threshold=tune_threshold
    )
