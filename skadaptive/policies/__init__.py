"""Exit policies: how the decision to answer now or defer is learned.

A policy is one rule per stage but the last; a rule scores each row from the
probabilities seen so far and exits the rows whose score reaches its threshold.
Families (the estimators' ``policy`` parameter):

- ``"linear"``, ``"constant"`` or a classifier: Bolukbasi et al. (2017) rules,
  learned bottom-up as weighted binary problems (:func:`fit_bottom_up_policy`);
- ``"eenet"``: learned per-exit correctness scores with per-exit thresholds
  scheduled for a cost weight or budget (:func:`fit_eenet_scorers`,
  :func:`schedule_thresholds`);
- ``"max_proba"``, ``"entropy"``, ``"patience"``: heuristic scores with one
  shared threshold for a cost weight, one threshold per exit for a budget
  (:func:`heuristic_score`).

:func:`make_policy_search` fits any family for a ``cost_weight`` or a budget and
traces its frontier of accuracy against cost.

The rule classes (``ExitRule``, ``HeuristicRule``, ``EENetRule``) and
``PolicyEvaluation`` are importable from here for inspection of a fitted
``policy_``, but are not part of the stable API.
"""

# Importable for inspecting a fitted policy_, outside __all__ (not stable API):
# ExitRule, EENetRule, EENetScorers, HeuristicRule, PolicyEvaluation,
# evaluate_policy, first_stage_policy.
from ._bottom_up import (  # noqa: F401
    POLICY_FAMILIES,
    CascadePolicy,
    ExitRule,
    check_policy_learner,
    fit_bottom_up_policy,
    risk_minimising_threshold,
)
from ._eenet import (  # noqa: F401
    EENetRule,
    EENetScorers,
    fit_eenet_scorers,
    schedule_thresholds,
)
from ._features import FEATURE_SETS, confidence_features, policy_features
from ._heuristics import HEURISTICS, HeuristicRule, heuristic_score  # noqa: F401
from ._losses import LOSSES, per_row_loss
from ._search import (  # noqa: F401
    DEFAULT_COST_WEIGHTS,
    POLICIES,
    PolicyEvaluation,
    PolicySearch,
    check_policy,
    evaluate_policy,
    first_stage_policy,
    make_policy_search,
)

__all__ = [
    "CascadePolicy",
    "DEFAULT_COST_WEIGHTS",
    "FEATURE_SETS",
    "HEURISTICS",
    "LOSSES",
    "POLICIES",
    "POLICY_FAMILIES",
    "PolicySearch",
    "check_policy",
    "check_policy_learner",
    "confidence_features",
    "fit_bottom_up_policy",
    "fit_eenet_scorers",
    "heuristic_score",
    "make_policy_search",
    "per_row_loss",
    "policy_features",
    "risk_minimising_threshold",
    "schedule_thresholds",
]
