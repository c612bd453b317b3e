"""Independent stage models: each stage starts from the raw rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import StageOutputError, stage_label


@dataclass
class IndependentStages:
    """A :class:`~skadaptive.engine.StageSource` over fitted classifiers.

    Every stage's ``predict_proba`` columns are in the order of the shared
    ``classes_`` (checked at fit), so they are used as they come.
    """

    estimators: list
    names: list | None = None

    #: Its stages may be :class:`~skadaptive.stages._cross_fitted.CrossFitted`
    #: (each answers through its members' own methods).
    takes_cross_fitted = True

    @classmethod
    def of_members(cls, members: list, names: list | None = None):
        """The source of fitted stages (the cascade's ``make_source``)."""
        return cls(list(members), None if names is None else list(names))

    @property
    def stage_names(self) -> list:
        """What messages call each stage: its name, else its index and type."""
        if self.names is not None:
            return self.names
        return [f"{k} ({type(e).__name__})" for k, e in enumerate(self.estimators)]

    @property
    def n_stages(self) -> int:
        return len(self.estimators)

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.estimators[0].classes_)

    def run_stage(self, stage: int, X_rows, state):
        try:
            proba = self.estimators[stage].predict_proba(X_rows)
        except StageOutputError as error:
            # Two stages may be of one class: name the stage.
            raise ValueError(f"{stage_label(self, stage)}: {error}") from None
        return np.asarray(proba, dtype=np.float64), None

    def keep_rows(self, state, mask):
        return None
