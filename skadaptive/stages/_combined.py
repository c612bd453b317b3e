"""Exits that answer with every probability computed so far (``answer="combined"``).

When a row reaches exit ``k``, exits ``0..k`` have all been paid for. A
combiner at exit ``k`` maps their probabilities to one answer; it is learned
on the cross-fitted held-out probabilities (never on a stage's training rows)
and chosen per exit by its cross-validated loss (the estimator's ``loss``:
error rate or log loss; from the simplest kind up, a kind replaces the one
kept so far only where it beats it by more than one standard error of the
paired difference) among three kinds:

- ``"stage"``: exit ``k``'s own probabilities (exit 0 always answers so);
- ``"log_pool"``: a weighted geometric pooling, ``softmax(sum_j w_j log p_j +
  b)``, with one weight per exit and one bias per class (``k + 1 + n_classes``
  numbers: it reweights and recalibrates the exits without room to overfit);
- ``"logistic"``: multinomial logistic regression on the standardised
  log-probabilities of exits ``0..k`` (one weight per exit, class and class:
  it can learn which exit to trust for which class).

The policy is then learned on the combined answers' out-of-fold probabilities,
so its exit risk at ``k`` is the combined answer's loss. At prediction
:class:`CombinedExits` wraps the stage source: the engine sees combined
probabilities at every exit and routes rows as with any source.
"""

from __future__ import annotations

import warnings
from typing import TypeVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from .._sklearn_private import _num_samples
from .._validation import check_exit_output, stage_label
from ..policies._selection import (
    _standard_error,
    answer_rows,
    deal_groups,
    unit_keys,
)

_T = TypeVar("_T", bound="ExitCombiner")

__all__ = [
    "ExitCombiner",
    "CombinedExits",
    "answering_source",
    "combined_answers",
    "fit_combiners",
]

#: Probabilities are floored here before the log: a stage's exact zeros (trees)
#: would otherwise be -inf, and below it a stage's confidence carries nothing a
#: combiner can use.
PROBA_FLOOR = 1e-6
#: Folds of the cross-validation that chooses each exit's combiner and gives
#: the policy its out-of-fold combined probabilities.
N_FOLDS = 3
#: Below this many policy rows of positive weight a combiner would be fitted
#: on noise: every exit answers with its own probabilities.
MIN_ROWS = 30
#: L2 penalty of the pooling's class biases (its exit weights are free).
POOL_L2 = 1e-3
#: L2 penalty of the logistic combiner's coefficients (on the standardised
#: log-probabilities), per unit of the weighted mean log loss. Both combiners
#: fit the weighted mean (weights normalised to sum to one), so a fit does not
#: depend on the weights' scale and weight k on a row is k copies of it.
LOGISTIC_L2 = 1e-4
KINDS = ("stage", "log_pool", "logistic")


def combines(combiners: list) -> bool:
    """Whether any exit answers with something other than its own probabilities."""
    return any(c.kind != "stage" for c in combiners)


def log_probas(proba: np.ndarray) -> np.ndarray:
    """Floored log of a stage's probabilities (what every combiner reads)."""
    return np.log(np.maximum(proba, PROBA_FLOOR))


class ExitCombiner:
    """The answer of one exit from the log-probabilities of exits ``0..exit``.

    Fitted by :class:`~skadaptive.AdaptiveCascadeClassifier` and
    :class:`~skadaptive.EarlyExitClassifier` with ``answer="combined"`` (one
    per exit, in ``combiners_``); see the user guide's "Combined answers".

    Parameters
    ----------
    exit : int
        The exit it answers at; it reads exits ``0..exit``.
    kind : {"stage", "log_pool", "logistic"}, default="stage"
        Chosen by cross-validated loss on the policy rows: from the simplest
        kind up, a kind only where its loss is lower than the kind kept so
        far by more than one standard error of the paired per-row difference.
    cv_error, cv_log_loss : dict, default=None
        Out-of-fold error rate and log loss of each kind tried (weighted like
        the fit); empty where only ``"stage"`` was possible (exit 0, too few
        rows).

    Attributes
    ----------
    weights : ndarray or None
        ``"log_pool"``: the weight of each exit's log-probabilities, shape
        ``(exit + 1,)``. ``"logistic"``: shape ``(exit + 1, n_classes,
        n_classes)``, ``weights[j, c, d]`` the weight of exit ``j``'s
        log-probability of class ``c`` in the score of class ``d`` (the
        standardisation folded in). None for ``"stage"``.
    bias : ndarray of shape (n_classes,) or None
        The score of each class before the exits' terms; the answer is the
        softmax of the scores. None for ``"stage"``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("lr", LogisticRegression(max_iter=2000)),
    ...      ("rf", RandomForestClassifier(n_estimators=50, random_state=0))],
    ...     costs=[1, 10], answer="combined", cv=3, random_state=0,
    ... ).fit(X[:1200], y[:1200])
    >>> cascade.combiners_[0]
    ExitCombiner(exit=0, kind='stage')
    >>> last = cascade.combiners_[1]
    >>> sorted(last.cv_log_loss)
    ['log_pool', 'logistic', 'stage']
    >>> bool(last.cv_error[last.kind] <= last.cv_error["stage"])
    True
    """

    def __init__(self, exit: int, kind: str = "stage", cv_error=None, cv_log_loss=None):
        self.exit = exit
        self.kind = kind
        self.cv_error = {} if cv_error is None else dict(cv_error)
        self.cv_log_loss = {} if cv_log_loss is None else dict(cv_log_loss)
        self.weights = None
        self.bias = None

    def __repr__(self) -> str:
        return f"ExitCombiner(exit={self.exit}, kind={self.kind!r})"

    @staticmethod
    def reads(proba: np.ndarray) -> np.ndarray:
        """What the combiners read of an exit's probabilities: their floored logs.

        Parameters
        ----------
        proba : ndarray of shape (n_rows, n_classes)
            One exit's probabilities.

        Returns
        -------
        logs : ndarray of shape (n_rows, n_classes)
            :func:`log_probas` of them.
        """
        return log_probas(proba)

    def fit(
        self: _T,
        logs: list,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        n_classes: int,
    ) -> _T:
        """Fit ``self.kind`` on the log-probabilities ``logs`` of exits 0..exit.

        Parameters
        ----------
        logs : list of ndarray of shape (n_rows, n_classes)
            :func:`log_probas` of each exit's held-out probabilities.
        y : ndarray of shape (n_rows,)
            Labels as column indices.
        sample_weight : ndarray of shape (n_rows,) or None
        n_classes : int

        Returns
        -------
        self : ExitCombiner
        """
        if self.kind == "log_pool":
            self.weights, self.bias = _fit_log_pool(logs, y, sample_weight, n_classes)
        elif self.kind == "logistic":
            self.weights, self.bias = _fit_logistic(logs, y, sample_weight)
        return self

    def combine(self, logs: list) -> np.ndarray:
        """Combined probabilities from the log-probabilities of exits 0..exit.

        Parameters
        ----------
        logs : list of ndarray of shape (n_rows, n_classes)
            :func:`log_probas` of each exit's probabilities, exit 0 first.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes)
        """
        if self.kind == "stage":
            # The estimators answer with the exit's own probabilities; from
            # the floored logs they come back floored and renormalised.
            return _softmax(logs[self.exit].copy())
        if self.kind == "log_pool":
            scores = self.weights[0] * logs[0]
            for weight, log in zip(self.weights[1:], logs[1 : self.exit + 1]):
                scores += weight * log
        else:
            scores = logs[0] @ self.weights[0]
            for block, log in zip(self.weights[1:], logs[1 : self.exit + 1]):
                scores += log @ block
        scores += self.bias
        return _softmax(scores)


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in place."""
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


def _fit_log_pool(logs, y, sample_weight, n_classes):
    """Weights and biases of ``softmax(sum_j w_j log p_j + b)`` (weighted log loss)."""
    stacked = np.stack(logs)  # (n_exits, n_rows, n_classes)
    n_exits, n_rows = stacked.shape[:2]
    weight = np.ones(n_rows) if sample_weight is None else sample_weight
    weight = weight / weight.sum()
    onehot = np.zeros((n_rows, n_classes))
    onehot[np.arange(n_rows), y] = 1.0

    def loss_and_gradient(theta):
        w, b = theta[:n_exits], theta[n_exits:]
        scores = np.tensordot(w, stacked, axes=1) + b
        norm = logsumexp(scores, axis=1)
        loss = weight @ (norm - scores[np.arange(n_rows), y]) + POOL_L2 * (b @ b)
        residual = (np.exp(scores - norm[:, None]) - onehot) * weight[:, None]
        grad_w = np.einsum("knc,nc->k", stacked, residual)
        grad_b = residual.sum(axis=0) + 2 * POOL_L2 * b
        return loss, np.concatenate([grad_w, grad_b])

    # Start from the last exit's own answer.
    start = np.concatenate([np.eye(n_exits)[-1], np.zeros(n_classes)])
    theta = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B").x
    return theta[:n_exits], theta[n_exits:]


def _fit_logistic(logs, y, sample_weight) -> tuple:
    """Multinomial logistic regression on the standardised log-probabilities.

    The weighted mean log loss plus ``LOGISTIC_L2`` times the squared
    coefficients: the weights are normalised to sum to one, so only their
    ratios count (weights that sum to one, or to the row count, fit alike).
    Returned folded into one matrix per exit and a bias (``scores = bias +
    sum_j logs[j] @ blocks[j]``, then softmax): no copy of the features, no
    per-call overhead of an estimator's checks at prediction.
    """
    X = np.hstack(logs)
    weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
    weight = weight / weight.sum()
    with np.errstate(invalid="ignore"):
        # A column constant on these rows (a class a fold's stage never saw)
        # can get a variance of -1e-40 from rounding: its scale is 1 anyway.
        scaler = StandardScaler().fit(X, sample_weight=weight)
    # scikit-learn minimises sum(w * loss) + |coef|^2 / (2 C).
    model = LogisticRegression(C=1 / (2 * LOGISTIC_L2), max_iter=300, tol=1e-4)
    with warnings.catch_warnings():
        # A combiner a few iterations short of convergence is still scored by
        # its out-of-fold loss, which is what chooses it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(X), y, sample_weight=weight)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        # Binary: probability sigmoid(z) of the second class is softmax([0, z]).
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    folded = (coef / scaler.scale_).T  # (n_features, n_classes)
    bias = intercept - scaler.mean_ @ folded
    n_classes = logs[0].shape[1]
    return folded.reshape(len(logs), n_classes, n_classes), bias


def _row_losses(proba, y) -> dict:
    """Each row's 0/1 error and log loss under ``proba``."""
    picked = proba[np.arange(len(y)), y]
    return {
        "zero_one": (np.argmax(proba, axis=1) != y).astype(float),
        "log_loss": -np.log(np.maximum(picked, 1e-15)),
    }


def _choose_kind(
    out_of_fold: dict, y_encoded, sample_weight, loss: str, group_of_row=None
) -> tuple:
    """The kind kept, and every kind's out-of-fold error and log loss.

    From the simplest kind (the stage's own answer) up, a kind replaces the
    one kept so far only where it is clearly better: its mean per-row loss
    (the estimator's ``loss``) lower by more than one standard error of the
    paired per-row difference (the one-standard-error rule). The held-out
    probabilities come from stages fitted on part of the rows, the answers
    at prediction (with ``refit=True``) from stages refitted on all of them,
    so a gain within noise on the first often does not carry over; and the
    logistic regression, with a weight per class pair, beat the pooling by
    noise as often as not (its choice flipped with the folds' seed). The
    rows of a group (``group_of_row``: copies of a row) count as one row of
    their total weight, as a row of that weight does.
    """
    n_rows = len(y_encoded)
    weight = np.ones(n_rows) if sample_weight is None else sample_weight
    weight = weight / weight.sum()
    rows = {kind: _row_losses(p, y_encoded) for kind, p in out_of_fold.items()}
    errors = {kind: float(weight @ r["zero_one"]) for kind, r in rows.items()}
    log_losses = {kind: float(weight @ r["log_loss"]) for kind, r in rows.items()}
    chosen = one_standard_error_choice(
        {kind: rows[kind][loss] for kind in KINDS if kind in rows},
        weight,
        group_of_row,
    )
    return chosen, errors, log_losses


def one_standard_error_choice(row_losses: dict, weight, group_of_row=None) -> str:
    """The kind kept by the one-standard-error rule, from the simplest up.

    ``row_losses`` maps each kind tried (``"stage"`` and the others in
    ``KINDS`` order, or :data:`~skadaptive.stages._combined_regression.KINDS`'
    for regressors) to each row's out-of-fold loss; ``weight`` sums to one.
    A kind replaces the one kept so far only where its mean loss is lower by
    more than one standard error of the paired per-row difference, the rows
    of a group (``group_of_row``: copies of a row) counting as one row of
    their total weight.
    """
    n_rows = len(weight)
    if group_of_row is None:
        group_of_row = np.arange(n_rows)
    group_weight = np.bincount(group_of_row, weights=weight)
    kept = group_weight > 0

    def clearly_better(kind, than) -> bool:
        difference = row_losses[kind] - row_losses[than]
        gain = -np.bincount(group_of_row, weights=weight * difference)[kept]
        gain = gain / group_weight[kept]
        # ddof=1: a difference carried by one row is exactly one standard
        # error, so fixing one row (and breaking none) is not enough.
        standard_error = _standard_error(gain, group_weight[kept], ddof=1)
        mean = gain @ (group_weight[kept] / group_weight[kept].sum())
        return bool(mean > standard_error * (1 + 1e-9))

    chosen = "stage"
    # The kinds are in order of simplicity ("stage" first).
    for kind in (kind for kind in row_losses if kind != "stage"):
        if clearly_better(kind, chosen):
            chosen = kind
    return chosen


def _folds(
    weight: np.ndarray, groups, random_state, units=None, stage_answers=None, y=None
) -> tuple:
    """The fold of each row, each row's group, and which rows weigh something.

    Groups of rows (``groups``: equal values, e.g. a hash of each row's
    content; None: every row its own) are dealt whole to ``N_FOLDS`` folds
    balanced by weight (:func:`~skadaptive.policies._selection.deal_groups`),
    so that copies of a row are never both learned from and scored, and k
    copies go where the row with weight k would. In one fixed order without
    a ``random_state``. Rows of zero weight (which change no fit and no
    figure) are answered out of fold too, and never move the others.

    With ``units`` (the user's groups, routed to the splitter) those are
    dealt whole instead, each keyed by its rows' content (``groups``, or
    where there is none the rows' ``stage_answers`` and labels ``y``), not by
    its label or the order of its rows
    (:func:`~skadaptive.policies._selection.unit_keys`).
    """
    if units is not None:
        group_of_row = np.unique(np.asarray(units), return_inverse=True)[1].ravel()
        answers = answer_rows(stage_answers, y)
        if groups is None:
            keys = unit_keys(answers, group_of_row, weight)
        else:
            # Rows told apart by their content's hash; groups equal in it but
            # not in their answers or labels, by those too.
            keys = unit_keys(
                np.asarray(groups)[:, None], group_of_row, weight, full=answers
            )
    elif groups is None:
        group_of_row = np.arange(len(weight))
        keys = group_of_row.astype(np.uint64)
    else:
        keys, group_of_row = np.unique(np.asarray(groups), return_inverse=True)
        group_of_row = group_of_row.ravel()
    fold_of = deal_groups(group_of_row, keys, weight, N_FOLDS, random_state)
    return fold_of, group_of_row, weight > 0


def fold_splits(fold_of: np.ndarray, positive: np.ndarray) -> list:
    """``(train, test)`` row indices of each of the ``N_FOLDS`` folds: a
    combiner learns from the other folds' rows of positive weight and answers
    every row of its fold."""
    return [
        (np.flatnonzero(positive & (fold_of != fold)), np.flatnonzero(fold_of == fold))
        for fold in range(N_FOLDS)
    ]


def distinct_rows(groups, positive: np.ndarray) -> int:
    """How many distinct rows have a positive weight (``positive``).

    Copies of a row (one group: equal values of ``groups``; None: every row
    its own) count once, as the row with their total weight does, so that
    weight k on a row is k copies of it here too.
    """
    if groups is None:
        return int(np.count_nonzero(positive))
    return len(np.unique(np.asarray(groups)[positive]))


def enough_rows(groups, positive: np.ndarray) -> bool:
    """Whether there are ``MIN_ROWS`` distinct rows of positive weight
    (:func:`distinct_rows`)."""
    return distinct_rows(groups, positive) >= MIN_ROWS


def enough_units(units, positive: np.ndarray) -> bool:
    """Whether the rows of positive weight span two units or more (``units``:
    the groups routed to the splitter, dealt whole to the folds; None: every
    row its own), so that a combiner can be learned on some and scored on
    others."""
    return distinct_rows(units, positive) >= 2


def absent_classes(y_encoded, positive, n_classes: int) -> np.ndarray:
    """The class indices that no row of positive weight (``positive``) has:
    a combiner learned on those rows would never answer them."""
    return np.setdiff1d(np.arange(n_classes), y_encoded[positive])


def _learnable_kinds(y_encoded, positive, fold_of, n_classes, groups, units) -> list:
    """The kinds of combiner the rows of positive weight can teach.

    None below ``MIN_ROWS`` distinct such rows (:func:`enough_rows`), in a
    single unit (:func:`enough_units`), or where a class has none of them;
    the pooling (which answers every class through its biases) where each
    fold's training rows hold two classes or more; the logistic regression
    (whose columns are the classes it saw) only where they hold every class.
    """
    if not (enough_rows(groups, positive) and enough_units(units, positive)):
        return []
    if len(absent_classes(y_encoded, positive, n_classes)):
        # A class no policy row has: a combiner would learn never to answer
        # it (the pooling's bias for it goes to minus infinity), where each
        # stage still can.
        return []
    seen = [
        len(np.unique(y_encoded[positive & (fold_of != fold)]))
        for fold in range(N_FOLDS)
    ]
    if min(seen) < 2:
        return []
    return ["log_pool", "logistic"] if min(seen) == n_classes else ["log_pool"]


def fit_combiners(
    stage_probas: list,
    y_encoded: np.ndarray,
    sample_weight=None,
    *,
    loss: str = "zero_one",
    random_state=None,
    groups=None,
    units=None,
) -> tuple[list, list]:
    """One combiner per exit, and the policy rows' out-of-fold combined probabilities.

    Parameters
    ----------
    stage_probas : list of ndarray of shape (n_rows, n_classes)
        Every exit's cross-fitted held-out probabilities of the policy rows.
    y_encoded : ndarray of shape (n_rows,)
        Labels as column indices.
    sample_weight : ndarray of shape (n_rows,), default=None
    loss : {"zero_one", "log_loss"}, default="zero_one"
        What chooses each exit's kind: the out-of-fold error rate or log loss
        of each row (see :func:`_choose_kind`: a kind must beat the simpler
        kind kept so far by more than one standard error).
    random_state : int, RandomState instance or None, default=None
        Salts the order in which rows are dealt to the folds (one fixed
        order without one).
    groups : array-like of shape (n_rows,), default=None
        Rows of equal value are dealt to the same fold (the estimators pass a
        hash of each policy row's content, so that copies of a row are never
        both learned from and scored, and k copies go where the row with
        weight k would); None: every row on its own.
    units : array-like of shape (n_rows,), default=None
        The groups routed to the splitter (a patient's rows): where given,
        each is dealt whole to a fold in place of ``groups`` and is one unit
        of evidence in the choice of kind, its figure its rows' weighted mean
        (rows of two units are independent even where their content is
        equal). ``groups`` still counts the distinct rows of the minimum.

    Returns
    -------
    combiners : list of ExitCombiner
        Fitted on all the rows.
    combined : list of ndarray of shape (n_rows, n_classes)
        Each exit's combined probabilities of each row from the combiner
        fitted without the row's fold (exit 0, and exits answering
        ``"stage"``, give the stage's own): what the policy is learned on.
    """
    n_rows, n_classes = stage_probas[0].shape
    logs = [log_probas(p) for p in stage_probas]
    weight = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight)
    fold_of, group_of_row, positive = _folds(
        weight, groups, random_state, units, stage_probas, y_encoded
    )
    kinds = _learnable_kinds(y_encoded, positive, fold_of, n_classes, groups, units)
    splits = fold_splits(fold_of, positive)
    rows = np.flatnonzero(positive)
    combiners, combined = [ExitCombiner(0)], [stage_probas[0]]
    for k in range(1, len(stage_probas)):
        if not kinds:
            combiners.append(ExitCombiner(k))
            combined.append(stage_probas[k])
            continue
        out_of_fold = {"stage": stage_probas[k]}
        for kind in kinds:
            proba = np.empty((n_rows, n_classes))
            for train, test in splits:
                combiner = ExitCombiner(k, kind).fit(
                    [log[train] for log in logs[: k + 1]],
                    y_encoded[train],
                    weight[train],
                    n_classes,
                )
                proba[test] = combiner.combine([log[test] for log in logs[: k + 1]])
            out_of_fold[kind] = proba
        best, errors, log_losses = _choose_kind(
            out_of_fold, y_encoded, weight, loss, group_of_row
        )
        combiners.append(
            ExitCombiner(k, best, errors, log_losses).fit(
                [log[rows] for log in logs[: k + 1]],
                y_encoded[rows],
                weight[rows],
                n_classes,
            )
        )
        combined.append(out_of_fold[best])
    return combiners, combined


def combined_answers(combiners: list, stage_probas: list) -> list:
    """Every exit's answer for every row, from every exit's own answers.

    What routing answers at each exit (offline: no row leaves early).

    Parameters
    ----------
    combiners : list of ExitCombiner or RegressionCombiner
    stage_probas : list of ndarray of shape (n_rows, n_classes or 2)
        Each exit's own probabilities (a regressor's: prediction and
        uncertainty, in the target's units).

    Returns
    -------
    answers : list of ndarray of shape (n_rows, n_classes or 2)
    """
    if not combines(combiners):
        return list(stage_probas)
    inputs = [combiners[0].reads(p) for p in stage_probas]
    return [
        p if c.kind == "stage" else c.combine(inputs[: c.exit + 1])
        for c, p in zip(combiners, stage_probas)
    ]


class CombinedExits:
    """A stage source whose exits answer with their combiners.

    Wraps any :class:`~skadaptive.engine.StageSource`: the wrapped source runs
    the exits as before, each exit's own answers are checked (errors name the
    stage), and the state carries the answers of the exits run so far for the
    rows still running (and what the combiners read of them, a classifier's
    logs, once a combiner has read them), compacted with the source's own
    state. A regression source's exits answer with a prediction and an
    uncertainty (:class:`~skadaptive.stages._combined_regression.RegressionCombiner`).
    """

    def __init__(self, source, combiners: list):
        self.source = source
        self.combiners = list(combiners)
        self.n_stages = source.n_stages
        self.rows_in_state = getattr(source, "rows_in_state", False)
        # Whether a combiner after exit k reads the exits' probabilities: if
        # none does, they are not kept (nor compacted) past exit k.
        self._read_later = [
            combines(self.combiners[k + 1 :]) for k in range(len(self.combiners))
        ]

    def __getattr__(self, name):
        # classes_, stage_names, default_costs...: the wrapped source's.
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def run_stage(self, stage: int, X_rows, state):
        inner, probas, inputs = (None, [], []) if state is None else state[1:]
        proba, inner = self.source.run_stage(stage, X_rows, inner)
        combiner = self.combiners[stage]
        if combiner.kind == "stage":
            # Returned as it is: the engine checks it, as any stage's output.
            proba = np.asarray(proba, dtype=np.float64)
            return proba, (stage, inner, [*probas, proba], [*inputs, None])
        # Checked before it is combined: a combination can hide a bad output
        # (rows not summing to 1 sum to 1 after a softmax).
        n_rows = _num_samples(X_rows) if X_rows is not None else len(probas[0])
        proba = check_exit_output(
            self.source, proba, n_rows, stage_label(self.source, stage)
        )
        probas, inputs = [*probas, proba], [*inputs, None]
        # What the combiners read (a classifier's logs), only where a
        # combiner reads it, for the rows still running; kept (and compacted)
        # for the later exits.
        inputs = [
            combiner.reads(p) if read is None else read
            for p, read in zip(probas, inputs)
        ]
        return combiner.combine(inputs), (stage, inner, probas, inputs)

    def keep_rows(self, state, mask):
        stage, inner, probas, inputs = state
        inner = self.source.keep_rows(inner, mask)
        if not self._read_later[stage]:
            # No later combiner reads them: placeholders, never read.
            return stage, inner, [None] * len(probas), [None] * len(inputs)
        return (
            stage,
            inner,
            [p[mask] for p in probas],
            [None if read is None else read[mask] for read in inputs],
        )


def answering_source(source, combiners: list):
    """``source`` as its exits answer: wrapped in :class:`CombinedExits` only
    where some exit combines (otherwise the source itself, with no overhead)."""
    return CombinedExits(source, combiners) if combines(combiners) else source
