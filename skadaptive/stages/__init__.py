"""Stages: what can run on a batch of rows, and what it costs per row."""

from ._costs import measure_seconds_per_row
from ._independent import IndependentStages

__all__ = ["IndependentStages", "measure_seconds_per_row"]
