"""Fixed exit deciders for testing stage sources through the routing engine."""

import numpy as np


class MaxProbaAtLeast:
    """Exit where the stage's top probability reaches ``thresholds[stage]``."""

    def __init__(self, thresholds):
        self.thresholds = thresholds

    def exits(self, stage, history):
        proba = history[-1]
        if stage == len(self.thresholds):
            return np.ones(len(proba), dtype=bool)
        return proba.max(axis=1) >= self.thresholds[stage]


class ExitAt:
    """Every row exits at ``stage``."""

    def __init__(self, stage):
        self.stage = stage

    def exits(self, stage, history):
        return np.full(len(history[-1]), stage >= self.stage)
