"""Plots of the accuracy/cost trade-off (needs matplotlib: ``skadaptive[plot]``)."""

from ._cost_accuracy import CostAccuracyDisplay

__all__ = ["CostAccuracyDisplay"]
