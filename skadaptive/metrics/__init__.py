"""Cost-aware scorers and selection rules for model search."""

from ._scorers import cheapest_within, make_average_cost_scorer, make_cost_aware_scorer

__all__ = ["cheapest_within", "make_average_cost_scorer", "make_cost_aware_scorer"]
