"""Heuristic exit rules: one confidence score and one shared threshold.

The baselines that early-exit and cascade papers compare against: exit at the
first stage whose max probability (or one minus its normalised entropy) reaches
a threshold, or, for patience, whose predicted class has stayed the same for
``t`` consecutive exits (Zhou et al., 2020). The threshold is shared by every
stage and chosen on held-out rows for a ``cost_weight`` or a budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._features import confidence_features
from ._thresholds import cuts_between, first_reaching  # noqa: F401

#: The heuristic policy families, each with one shared threshold.
HEURISTICS = ("max_proba", "entropy", "patience")


def heuristic_score(kind: str, history: list[np.ndarray]) -> np.ndarray:
    """Confidence of the last stage in ``history``; higher means exit sooner.

    Parameters
    ----------
    kind : {"max_proba", "entropy", "patience"}
        ``"max_proba"``: the largest class probability. ``"entropy"``: one minus
        the entropy divided by ``log(n_classes)``. ``"patience"``: the number of
        consecutive stages, ending at the last, that predict the same class.
    history : list of ndarray of shape (n_samples, n_classes)
        Probabilities of the stages run so far, in order.

    Returns
    -------
    score : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import heuristic_score
    >>> history = [np.array([[0.6, 0.4]]), np.array([[0.3, 0.7]]),
    ...            np.array([[0.2, 0.8]])]
    >>> heuristic_score("patience", history)
    array([2.])
    >>> heuristic_score("max_proba", history)
    array([0.8])
    """
    current = np.asarray(history[-1], dtype=np.float64)
    if kind == "max_proba":
        return current.max(axis=1)
    if kind == "entropy":
        return 1.0 - confidence_features(current)[:, 2]
    if kind == "patience":
        label = np.argmax(current, axis=1)
        run = np.ones(current.shape[0])
        unbroken = np.ones(current.shape[0], dtype=bool)
        for earlier in reversed(history[:-1]):
            unbroken &= np.argmax(earlier, axis=1) == label
            run += unbroken
        return run
    raise ValueError(f"Unknown heuristic {kind!r}; expected one of {HEURISTICS}.")


@dataclass
class HeuristicRule:
    """Exit where ``heuristic_score(kind, history) >= threshold``."""

    kind: str
    threshold: float

    def score(self, history: list[np.ndarray]) -> np.ndarray:
        """The heuristic's confidence of each row; higher means exit."""
        return heuristic_score(self.kind, history)

    def exits(self, history: list[np.ndarray]) -> np.ndarray:
        """Boolean mask of the rows that exit after this stage."""
        return self.score(history) >= self.threshold


_MAX_CANDIDATES = 512


def shared_threshold_table(
    scores: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate shared thresholds and the exit stage of every row under each.

    A shared threshold ``t`` exits a row at the first stage whose score reaches
    ``t``; with ``M[k]`` the running maximum of the row's scores up to stage
    ``k``, that stage is the number of ``M[k]`` below ``t``. Candidates lie
    halfway between consecutive distinct scores (:func:`cuts_between`; thinned
    to at most 512), never on a score, plus ``+inf`` (every row runs to the
    last stage). Only rows of positive ``weight`` give candidates, so that a
    weight of 0 is the same as no row.

    Returns
    -------
    thresholds : ndarray of shape (n_candidates,)
    exit_stage : ndarray of shape (n_candidates, n_rows)
    """
    running_max = np.maximum.accumulate(scores, axis=0)
    distinct = np.unique(scores if weight is None else scores[:, weight > 0])
    cuts = cuts_between(distinct)
    if len(cuts) > _MAX_CANDIDATES:
        cuts = cuts[
            np.unique(np.linspace(0, len(cuts) - 1, _MAX_CANDIDATES).astype(int))
        ]
    thresholds = np.append(cuts, np.inf)
    exit_stage = np.stack([(running_max < t).sum(axis=0) for t in thresholds]).astype(
        np.intp
    )
    return thresholds, exit_stage
