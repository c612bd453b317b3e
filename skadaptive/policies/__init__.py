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
  shared threshold (:func:`heuristic_score`).

:func:`make_policy_search` fits any family for a ``cost_weight`` or a budget and
traces its frontier of accuracy against cost.
"""

from ._bottom_up import (
    POLICY_FAMILIES,
    CascadePolicy,
    ExitRule,
    check_policy_learner,
    fit_bottom_up_policy,
    risk_minimising_threshold,
)
from ._eenet import EENetRule, EENetScorers, fit_eenet_scorers, schedule_thresholds
from ._features import FEATURE_SETS, confidence_features, policy_features
from ._heuristics import HEURISTICS, HeuristicRule, heuristic_score
from ._losses import LOSSES, per_row_loss
from ._search import (
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
    "EENetRule",
    "EENetScorers",
    "ExitRule",
    "FEATURE_SETS",
    "HEURISTICS",
    "HeuristicRule",
    "LOSSES",
    "POLICIES",
    "POLICY_FAMILIES",
    "PolicyEvaluation",
    "PolicySearch",
    "check_policy",
    "check_policy_learner",
    "confidence_features",
    "evaluate_policy",
    "first_stage_policy",
    "fit_bottom_up_policy",
    "fit_eenet_scorers",
    "heuristic_score",
    "make_policy_search",
    "per_row_loss",
    "policy_features",
    "risk_minimising_threshold",
    "schedule_thresholds",
]
