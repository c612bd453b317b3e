"""The one routing loop that both estimators use: stages run on compacted rows."""

from ._routing import ExitDecider, StageSource, route

__all__ = ["ExitDecider", "StageSource", "route"]
