"""Policy features: what a stage's probabilities say about its own confidence."""

from __future__ import annotations

import numpy as np

from .._rowwise import row_max, row_sum, row_top2

#: Values of ``policy_features``: what a Bolukbasi rule sees (``"classes"``
#: for classifiers only).
FEATURE_SETS = ("confidence", "history", "probabilities", "classes")
#: Those a regressor takes: its answers have no predicted class.
REGRESSION_FEATURE_SETS = tuple(k for k in FEATURE_SETS if k != "classes")
#: Why a regressor refuses ``"classes"``.
NO_CLASSES_IN_REGRESSION = (
    '"classes" is for classifiers: a regressor\'s answers have no predicted class'
)


def confidence_features(proba: np.ndarray) -> np.ndarray:
    """Max probability, top-1 minus top-2 margin and normalised entropy.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Class probabilities of one stage.

    Returns
    -------
    features : ndarray of shape (n_samples, 3)
        Columns are ``max_proba``, ``margin`` and ``entropy`` (divided by
        ``log(n_classes)`` so that it lies in [0, 1] whatever the class count).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import confidence_features
    >>> confidence_features(np.array([[0.7, 0.2, 0.1]])).round(3)
    array([[0.7 , 0.5 , 0.73]])
    """
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    if n_classes == 1:
        ones = np.ones(proba.shape[0])
        return np.column_stack([ones, ones, np.zeros_like(ones)])
    max_proba, second = row_top2(proba)
    clipped = np.clip(proba, 1e-12, 1.0)
    entropy = -row_sum(proba * np.log(clipped)) / np.log(n_classes)
    features = np.empty((proba.shape[0], 3))
    features[:, 0] = max_proba
    features[:, 1] = max_proba - second
    features[:, 2] = entropy
    return features


def _check_feature_set(kind: str, regression: bool = False) -> None:
    if regression and kind == "classes":
        raise ValueError(
            f"policy_features={NO_CLASSES_IN_REGRESSION}. Use one of "
            f"{', '.join(map(repr, REGRESSION_FEATURE_SETS))}."
        )
    if kind not in FEATURE_SETS:
        raise ValueError(
            f"Unknown policy features {kind!r}; use one of "
            f"{', '.join(map(repr, FEATURE_SETS))}."
        )


def policy_features(
    history: list[np.ndarray], kind: str, regression: bool = False
) -> np.ndarray:
    """Features on which the exit decision after the last stage in ``history`` is made.

    Parameters
    ----------
    history : list of ndarray of shape (n_samples, n_classes)
        Probabilities of every stage run so far for the same rows, in stage order;
        the decision is about the last one.
    kind : {"confidence", "history", "probabilities", "classes"}
        ``"confidence"``: the current stage's :func:`confidence_features`.
        ``"history"``: those, plus every earlier stage's max probability and
        whether its predicted class agrees with the current stage's, plus the
        current stage's probability of the class the previous stage predicted.
        ``"probabilities"``: ``"history"`` plus the current stage's whole
        probability vector. ``"classes"``: ``"probabilities"`` plus, for each
        class, whether the current stage predicts it and, if so, its max
        probability (else 0): a linear rule then learns an intercept and a
        slope of confidence per predicted class, for a stage whose answers of
        one class are more often wrong than another's at the same max
        probability. For regression, see :func:`regression_features`
        (``"classes"`` has no meaning there).
    regression : bool, default=False
        Whether ``history`` holds regression answers (prediction and
        uncertainty columns) rather than class probabilities.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import policy_features
    >>> p1, p2 = np.array([[0.6, 0.4]]), np.array([[0.1, 0.9]])
    >>> policy_features([p1, p2], "history").round(2)
    array([[0.9 , 0.8 , 0.47, 0.6 , 0.  , 0.1 ]])
    >>> policy_features([p1, p2], "classes")[:, -4:].round(2)
    array([[0. , 1. , 0. , 0.9]])
    """
    if regression:
        return regression_features(history, kind)
    _check_feature_set(kind)
    current = history[-1]
    columns = [confidence_features(current)]
    if kind == "confidence":
        return columns[0]
    rows = np.arange(current.shape[0])
    current_label = np.argmax(current, axis=1)
    if len(history) > 1:
        for earlier in history[:-1]:
            earlier_label = np.argmax(earlier, axis=1)
            columns.append(row_max(earlier)[:, None])
            columns.append((earlier_label == current_label).astype(np.float64)[:, None])
        columns.append(current[rows, earlier_label][:, None])
    if kind in ("probabilities", "classes"):
        columns.append(np.asarray(current, dtype=np.float64))
    if kind == "classes":
        predicted = np.zeros(current.shape)
        predicted[rows, current_label] = 1.0
        columns += [predicted, predicted * columns[0][:, :1]]
    return np.hstack(columns)


#: Knots of the piecewise-linear basis of a regression stage's prediction (on
#: the target's scale learned at fit: centred, unit spread): the deciles of a
#: standard normal, so that about a tenth of a typical target lies between two.
PREDICTION_KNOTS = (
    -1.2816,
    -0.8416,
    -0.5244,
    -0.2533,
    0.0,
    0.2533,
    0.5244,
    0.8416,
    1.2816,
)


def regression_features(history: list[np.ndarray], kind: str) -> np.ndarray:
    """Policy features of regression answers, after the last stage in ``history``.

    Each answer is a row's prediction (column 0, on the target's scale learned
    at fit: centred, unit spread) and the stage's own uncertainty about it
    (column 1; 0 for a stage that gives none).

    Parameters
    ----------
    history : list of ndarray of shape (n_samples, 2)
        Answers of every stage run so far for the same rows, in stage order.
    kind : {"confidence", "history", "probabilities"}
        ``"confidence"``: the current stage's uncertainty and its disagreement
        with the previous stage (the absolute difference of their
        predictions; for early exits of a boosted model, the change of its
        running prediction). ``"history"`` and ``"probabilities"`` (there is
        no probability vector in regression): those, plus the current
        prediction and its square (how far from the typical target the row
        is), every earlier stage's prediction, and the current stage's
        absolute difference from each of them. ``"probabilities"`` adds a
        piecewise-linear basis of the current prediction, ``max(0,
        prediction - k)`` for each knot ``k`` of :data:`PREDICTION_KNOTS`: a
        stage's error often varies with the level of its prediction in no
        monotone way (small in some ranges of the target, large in others),
        which one linear term and its square cannot follow.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import regression_features
    >>> first, second = np.array([[0.5, 0.0]]), np.array([[1.5, 0.2]])
    >>> regression_features([first, second], "confidence")
    array([[0.2, 1. ]])
    >>> regression_features([first, second], "history")
    array([[0.2 , 1.  , 1.5 , 2.25, 0.5 ]])
    >>> regression_features([first, second], "probabilities")[0, 5:].round(2)
    array([2.78, 2.34, 2.02, 1.75, 1.5 , 1.25, 0.98, 0.66, 0.22])
    """
    _check_feature_set(kind, regression=True)
    current = np.asarray(history[-1], dtype=np.float64)
    prediction = current[:, 0]
    columns = [current[:, 1]]
    if len(history) > 1:
        columns.append(np.abs(prediction - history[-2][:, 0]))
    if kind in ("history", "probabilities"):
        columns += [prediction, prediction**2]
        for earlier in history[:-1]:
            columns.append(earlier[:, 0])
        for earlier in history[:-2]:
            columns.append(np.abs(prediction - earlier[:, 0]))
    if kind == "probabilities":
        columns += [np.maximum(prediction - knot, 0.0) for knot in PREDICTION_KNOTS]
    return np.column_stack(columns)


#: The heuristic policy families of classifiers, each with one shared threshold.
HEURISTICS = ("max_proba", "entropy", "patience")

#: The heuristic policy families of regressors.
REGRESSION_HEURISTICS = ("disagreement", "uncertainty")


def heuristic_score(kind: str, history: list[np.ndarray]) -> np.ndarray:
    """Confidence of the last stage in ``history``; higher means exit sooner.

    Parameters
    ----------
    kind : {"max_proba", "entropy", "patience", "disagreement", "uncertainty"}
        ``"max_proba"``: the largest class probability. ``"entropy"``: one minus
        the entropy divided by ``log(n_classes)``. ``"patience"``: the number of
        consecutive stages, ending at the last, that predict the same class.
        For regression answers: ``"disagreement"``, minus the absolute
        difference between the last two stages' predictions (0 at the first
        stage, which has no earlier stage: every row or none exits there);
        ``"uncertainty"``, minus the last stage's own uncertainty (0 for a
        stage that gives none).
    history : list of ndarray of shape (n_samples, n_classes) or (n_samples, 2)
        Probabilities (or regression answers) of the stages run so far, in
        order.

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
    if kind == "disagreement":
        if len(history) == 1:
            return np.zeros(current.shape[0])
        return -np.abs(current[:, 0] - history[-2][:, 0])
    if kind == "uncertainty":
        return -current[:, 1]
    if kind == "max_proba":
        return row_max(current)
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
    raise ValueError(
        f"Unknown heuristic {kind!r}; expected one of "
        f"{HEURISTICS + REGRESSION_HEURISTICS}."
    )
