"""Exit policies: how the decision to answer now or defer is learned.

A policy is one :class:`ExitRule` per stage but the last; a rule scores each row
from the probabilities seen so far and exits the rows whose score reaches its
threshold. :func:`fit_bottom_up_policy` learns the rules as in Bolukbasi et al.
(2017); :func:`policy_frontier` traces accuracy against cost over ``cost_weight``.
"""

from ._bottom_up import (
    POLICY_FAMILIES,
    CascadePolicy,
    ExitRule,
    check_policy_learner,
    fit_bottom_up_policy,
    risk_minimising_threshold,
)
from ._features import FEATURE_SETS, confidence_features, policy_features
from ._losses import LOSSES, per_row_loss
from ._search import (
    DEFAULT_COST_WEIGHTS,
    PolicyEvaluation,
    evaluate_policy,
    first_stage_policy,
    most_accurate_within_budget,
    policy_frontier,
)

__all__ = [
    "CascadePolicy",
    "DEFAULT_COST_WEIGHTS",
    "ExitRule",
    "FEATURE_SETS",
    "LOSSES",
    "POLICY_FAMILIES",
    "PolicyEvaluation",
    "check_policy_learner",
    "confidence_features",
    "evaluate_policy",
    "first_stage_policy",
    "fit_bottom_up_policy",
    "most_accurate_within_budget",
    "per_row_loss",
    "policy_features",
    "policy_frontier",
    "risk_minimising_threshold",
]
