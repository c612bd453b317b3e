"""Exit policies: how the decision to answer now or defer is learned.

A policy is one rule per stage but the last; a rule scores each row from the
probabilities seen so far and exits the rows whose score reaches its threshold.
Families (the estimators' ``policy`` parameter):

- ``"linear"``, ``"constant"`` or a classifier: Bolukbasi et al. (2017) rules,
  learned bottom-up as weighted binary problems (:func:`fit_bottom_up_policy`);
- ``"eenet"``: learned per-exit correctness scores with per-exit thresholds
  scheduled for a cost weight or budget (:func:`fit_eenet_scorers`,
  :func:`schedule_thresholds`);
- ``"max_proba"``, ``"entropy"``, ``"patience"`` (classifiers),
  ``"disagreement"``, ``"uncertainty"`` (regressors): heuristic scores with
  one shared threshold for a cost weight, one threshold per exit for a budget
  (:func:`heuristic_score`).

For regressors the same families run on regression answers (each stage's
prediction and uncertainty, on the target's scale learned at fit) with a
regression ``loss`` (:data:`REGRESSION_LOSSES`); :func:`regression_features`
are what their rules see.

:func:`make_policy_search` fits any family for a ``cost_weight`` or a budget and
traces its frontier of accuracy against cost.

Modules: ``_policy`` (the policy and rule types and what a policy achieves),
``_policy_search`` (what every family's search does), one module per family
with its search (``_bottom_up``, ``_eenet``, ``_heuristics``), ``_selection``
(choosing a policy out of sample), ``_thresholds`` (per-exit thresholds for a
budget or a cost weight) and ``_search`` (the factory).

The rule classes (``ExitRule``, ``HeuristicRule``, ``EENetRule``), the
searches and ``PolicyEvaluation`` are importable from here for inspection of
a fitted ``policy_``, but are not part of the stable API (``__all__``).
"""

from ._bottom_up import (  # noqa: F401
    POLICY_FAMILIES,
    BolukbasiSearch,
    ExitRule,
    check_policy_learner,
    first_stage_policy,
    fit_bottom_up_policy,
    risk_minimising_threshold,
)
from ._eenet import (  # noqa: F401
    EENetRule,
    EENetScorers,
    EENetSearch,
    fit_eenet_scorers,
    schedule_thresholds,
)
from ._features import (  # noqa: F401
    FEATURE_SETS,
    HEURISTICS,
    REGRESSION_HEURISTICS,
    confidence_features,
    heuristic_score,
    policy_features,
    regression_features,
)
from ._heuristics import HeuristicSearch  # noqa: F401
from ._losses import (  # noqa: F401
    LOSSES,
    REGRESSION_LOSSES,
    is_regression_loss,
    per_row_loss,
)
from ._policy import (  # noqa: F401
    CascadePolicy,
    HeuristicRule,
    PolicyEvaluation,
    ScoredExits,
    ThresholdRule,
    evaluate_policy,
)
from ._policy_search import DEFAULT_COST_WEIGHTS, PolicySearch  # noqa: F401
from ._router import Router, routed_walk  # noqa: F401
from ._search import (  # noqa: F401
    POLICIES,
    REGRESSION_POLICIES,
    check_policy,
    make_policy_search,
)
from ._skips import JumpRule, SkipPolicy, SkipSearch, learn_jumps  # noqa: F401

# What a user writes a custom policy or policy family against (rules, a
# policy, what it achieves, a family's search and the scores it hands to the
# threshold search), and the names of the built-in families. The other names
# above are importable for inspecting a fitted ``policy_`` and for the
# package's own modules, but are not stable API.
__all__ = [
    "CascadePolicy",
    "DEFAULT_COST_WEIGHTS",
    "FEATURE_SETS",
    "HEURISTICS",
    "JumpRule",
    "LOSSES",
    "POLICIES",
    "REGRESSION_HEURISTICS",
    "REGRESSION_LOSSES",
    "REGRESSION_POLICIES",
    "POLICY_FAMILIES",
    "Router",
    "PolicyEvaluation",
    "PolicySearch",
    "ScoredExits",
    "SkipPolicy",
    "ThresholdRule",
    "check_policy",
    "confidence_features",
    "evaluate_policy",
    "heuristic_score",
    "is_regression_loss",
    "make_policy_search",
    "per_row_loss",
    "policy_features",
    "regression_features",
]
