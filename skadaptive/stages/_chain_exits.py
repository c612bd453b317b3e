"""Exits along a chain of scikit-learn steps, with a head at each.

Block ``k`` transforms the output of block ``k - 1`` (block 0 transforms ``X``);
head ``k`` classifies (:class:`ChainExits`) or regresses
(:class:`ChainExitsRegressor`) block ``k``'s output. A row that exits at head
``k`` never pays for blocks ``k + 1`` onwards, and a row that goes on does not recompute
blocks ``0..k``: the state handed on is block ``k``'s output.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from .._sklearn_private import _num_samples, _safe_indexing
from .._typing import ArrayLike, Rows, State
from .._validation import StageOutputError, nan_fate
from .._warnings import warn
from ._multi_exit import MultiExitSource, exit_probas
from ._regression import check_regressor, regression_answers

__all__ = ["ChainExits", "ChainExitsRegressor"]

_ChainT = TypeVar("_ChainT", bound="ChainExits")
_RegressorT = TypeVar("_RegressorT", bound="ChainExitsRegressor")


def _is_passthrough(block) -> bool:
    return block is None or (isinstance(block, str) and block == "passthrough")


def _take_rows(blocks, heads) -> list:
    """The members that get the rows as given: block 0, or where it passes
    them through, head 0 and those of the next block."""
    members = []
    for block, head in zip(blocks, heads):
        if not _is_passthrough(block):
            return [*members, block]
        members.append(head)
    return members


def _weights_for(weights: dict, member, name: str) -> dict:
    """The weights for a member's ``fit``, with a warning where it cannot take them."""
    if not weights or has_fit_parameter(member, "sample_weight"):
        return weights
    warn(
        f"{name} ({type(member).__name__}) does not accept sample_weight; it is "
        "fitted unweighted.",
        UserWarning,
    )
    return {}


def _check_members(blocks, heads, regression=False) -> tuple[list, list]:
    if not isinstance(blocks, list | tuple) or not isinstance(heads, list | tuple):
        raise TypeError("blocks and heads must be lists.")
    if len(blocks) == 0 or len(blocks) != len(heads):
        raise ValueError(
            "blocks and heads must be non-empty and of the same length (one head "
            f"per block); got {len(blocks)} blocks and {len(heads)} heads."
        )
    for k, block in enumerate(blocks):
        if not _is_passthrough(block) and not hasattr(block, "transform"):
            raise TypeError(
                f"Block {k} ({type(block).__name__}) has no transform; a block "
                "must be a transformer, 'passthrough' or None."
            )
    for k, head in enumerate(heads):
        if regression:
            check_regressor(
                head,
                f"Head {k}",
                "each exit of a ChainExitsRegressor needs a "
                "regressor head (use ChainExits for classifier heads).",
            )
        elif not hasattr(head, "predict_proba"):
            raise TypeError(
                f"Head {k} ({type(head).__name__}) has no predict_proba: each "
                "exit needs class probabilities."
            )
    return list(blocks), list(heads)


class _Chain(MultiExitSource, BaseEstimator):
    """What both chains share: the blocks, their fit, and the running state."""

    #: Whether the heads are regressors (their exits answer predictions).
    regression = False

    @property
    def rows_in_state(self) -> bool:
        """Whether later stages read the state only (the engine then passes
        them no rows): true unless a subclass overrides ``run_stage``."""
        return type(self).run_stage is _Chain.run_stage

    def __init__(self, blocks, heads):
        self.blocks = blocks
        self.heads = heads

    @property
    def n_stages(self) -> int:
        """Number of exits."""
        return len(self.heads)

    def _fit_chain(self, X, y, sample_weight) -> None:
        blocks, heads = _check_members(self.blocks, self.heads, self.regression)
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        fitted_blocks, fitted_heads = [], []
        Z = X
        for k, (block, head) in enumerate(zip(blocks, heads)):
            if _is_passthrough(block):
                fitted_block = block
            elif isinstance(block, FrozenEstimator):
                fitted_block = block
                Z = block.transform(Z)
            else:
                fitted_block = clone(block)
                params = _weights_for(weights, block, f"Block {k}")
                Z = fitted_block.fit_transform(Z, y, **params)
            if isinstance(head, FrozenEstimator):
                fitted_head = head
            else:
                params = _weights_for(weights, head, f"Head {k}")
                fitted_head = clone(head).fit(Z, y, **params)
            fitted_blocks.append(fitted_block)
            fitted_heads.append(fitted_head)
        self.blocks_ = fitted_blocks
        self.heads_ = fitted_heads

    def __sklearn_tags__(self):
        # What the chain takes, worked out from its members (the defaults
        # said no NaN, no sparse rows, whatever the blocks and heads take).
        tags = super().__sklearn_tags__()
        try:
            blocks, heads = _check_members(self.blocks, self.heads, self.regression)
            first = [
                get_tags(member).input_tags for member in _take_rows(blocks, heads)
            ]
        except (TypeError, ValueError, AttributeError):
            return tags  # malformed members: fit says what is wrong
        tags.input_tags.sparse = all(t.sparse for t in first)
        tags.input_tags.positive_only = any(t.positive_only for t in first)
        # A row with NaN takes each exit's path: the blocks up to it, its head.
        tags.input_tags.allow_nan = not any(
            nan_fate(SimpleNamespace(steps=list(enumerate([*blocks[: k + 1], head]))))
            == "refuses"
            for k, head in enumerate(heads)
        )
        return tags

    @property
    def n_features_in_(self) -> int:
        """Number of features of the rows seen during fit: the first member
        that takes them has it (as a Pipeline's first step has it); absent
        where that member has none (text rows, say)."""
        check_is_fitted(self)
        return _take_rows(self.blocks_, self.heads_)[0].n_features_in_

    def default_costs(self) -> None:
        """None: a chain has no natural cost unit, so its costs are measured."""
        return None

    def _answer(self, head, Z) -> np.ndarray:
        return np.asarray(head.predict_proba(Z), dtype=np.float64)

    def run_stage(
        self, stage: int, X_rows: Rows | None, state: State
    ) -> tuple[np.ndarray, State]:
        """Apply block ``stage`` to the carried output and answer with its head.

        At ``stage == 0`` block 0 is applied to ``X_rows``; later stages continue
        from ``state`` (block ``stage - 1``'s output for the same rows), and
        ``X_rows`` may be None there (as the engine passes it).

        Parameters
        ----------
        stage : int
        X_rows : array-like of shape (n_rows, n_features)
        state : array-like or None
            None at stage 0, else block ``stage - 1``'s output for these rows.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes) or (n_rows, 2)
            Class probabilities, or for regression heads each row's
            prediction and the head's uncertainty
            (:func:`~skadaptive.stages.regression_answers`).
        state : array-like
            Block ``stage``'s output.
        """
        check_is_fitted(self)
        if not 0 <= stage < self.n_stages:
            raise IndexError(f"stage {stage} out of range [0, {self.n_stages}).")
        if stage == 0:
            Z = X_rows
        else:
            if state is None:
                raise ValueError(
                    f"Stage {stage} continues from stage {stage - 1}'s state; got None."
                )
            if X_rows is not None and _num_samples(X_rows) != _num_samples(state):
                raise ValueError(
                    f"X_rows has {_num_samples(X_rows)} rows but the state has "
                    f"{_num_samples(state)}: pass the state of the same rows "
                    "(see keep_rows)."
                )
            Z = state
        block = self.blocks_[stage]
        if not _is_passthrough(block):
            Z = block.transform(Z)
        try:
            return self._answer(self.heads_[stage], Z), Z
        except StageOutputError as error:
            # Several heads may share a class: say which exit's head.
            raise ValueError(f"the head of exit {stage}: {error}") from None

    def keep_rows(self, state: State, mask: np.ndarray) -> State:
        """The state of the rows where the boolean ``mask`` is true, in order.

        Parameters
        ----------
        state : object or None
            What :meth:`run_stage` returned.
        mask : ndarray of bool of shape (n_rows,)

        Returns
        -------
        state : object or None
        """
        if state is None:
            return None
        if sp.issparse(state) and state.format not in ("csr", "csc"):
            state = state.tocsr()
        return _safe_indexing(state, np.flatnonzero(mask))


class ChainExits(ClassifierMixin, _Chain):
    """Exits along a chain of blocks with a classifier head after each.

    A scikit-learn classifier whose ``predict_proba`` is the last head's, and a
    multi-exit source for :class:`~skadaptive.EarlyExitClassifier`: exit ``k``
    answers with head ``k`` after blocks ``0..k``, and a row that goes on
    continues from block ``k``'s output instead of starting over.

    Parameters
    ----------
    blocks : list of transformers, ``"passthrough"`` or ``None``
        Block ``k`` is applied to block ``k - 1``'s output (block 0 to ``X``);
        ``"passthrough"`` or ``None`` hands its input on unchanged.
    heads : list of classifiers
        With ``predict_proba``; head ``k`` classifies block ``k``'s output.

    Attributes
    ----------
    blocks_ : list
        Fitted blocks: clones fitted one after the other, block ``k`` with
        ``fit_transform`` on block ``k - 1``'s output of the training rows.
        A ``FrozenEstimator`` member is used as given (a frozen block only
        transforms).
    heads_ : list
        Fitted heads, head ``k`` on block ``k``'s output.
    classes_ : ndarray of shape (n_classes,)
    n_stages : int

    Notes
    -----
    The heads are fitted on the blocks' outputs of the training rows, where
    their probabilities are over-confident; :class:`~skadaptive.EarlyExitClassifier`
    learns its exit policy on rows held out from the chain (``cv``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skadaptive.stages import ChainExits
    >>> X, y = load_iris(return_X_y=True)
    >>> chain = ChainExits(
    ...     [StandardScaler(), PCA(n_components=2)],
    ...     [LogisticRegression(), LogisticRegression()],
    ... ).fit(X, y)
    >>> proba_0, state = chain.run_stage(0, X, None)
    >>> state.shape  # the scaled rows, handed on to the PCA
    (150, 4)
    >>> proba_1, state = chain.run_stage(1, X, state)
    >>> state.shape
    (150, 2)
    """

    def fit(
        self: _ChainT, X: Rows, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> _ChainT:
        """Fit the blocks one after the other and a head on each output.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every block's and head's ``fit``; one that does not
            accept it is fitted unweighted, with a warning (as a cascade stage).

        Returns
        -------
        self : ChainExits
        """
        self._fit_chain(X, y, sample_weight)
        fitted_heads = self.heads_
        classes = np.asarray(fitted_heads[0].classes_)
        for k, head in enumerate(fitted_heads[1:], start=1):
            head_classes = np.asarray(head.classes_)
            if head_classes.shape != classes.shape or np.any(head_classes != classes):
                raise ValueError(
                    f"Head {k} has classes {head_classes!r} but head 0 has "
                    f"{classes!r}: every exit must answer over the same classes in "
                    "the same order."
                )
        self.classes_ = classes
        return self

    def predict_proba(self, X: Rows) -> np.ndarray:
        """Class probabilities of the last head, after every block.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return exit_probas(self, X)[-1]

    def predict(self, X: Rows) -> np.ndarray:
        """Class of each row by the last head.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)  # not fitted: NotFittedError, first
        return self.classes_[np.argmax(proba, axis=1)]


class ChainExitsRegressor(RegressorMixin, _Chain):
    """Exits along a chain of blocks with a regressor head after each.

    The regression counterpart of :class:`ChainExits`, for
    :class:`~skadaptive.EarlyExitRegressor`: exit ``k`` answers with head
    ``k``'s prediction after blocks ``0..k`` (and the head's uncertainty,
    see :func:`~skadaptive.stages.regression_answers`), and a row that goes
    on continues from block ``k``'s output.

    Parameters
    ----------
    blocks : list of transformers, ``"passthrough"`` or ``None``
        Block ``k`` is applied to block ``k - 1``'s output (block 0 to ``X``).
    heads : list of regressors
        Head ``k`` predicts from block ``k``'s output.

    Attributes
    ----------
    blocks_ : list
        Fitted blocks (``FrozenEstimator`` members used as given).
    heads_ : list
        Fitted heads.
    n_stages : int
    regression : bool
        True: every exit answers a prediction.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.preprocessing import SplineTransformer
    >>> from skadaptive.stages import ChainExitsRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> chain = ChainExitsRegressor(
    ...     ["passthrough", SplineTransformer()],
    ...     [Ridge(), RandomForestRegressor(n_estimators=10, random_state=0)],
    ... ).fit(X, y)
    >>> answer, state = chain.run_stage(0, X, None)
    >>> answer.shape   # prediction and uncertainty (0 for a ridge)
    (442, 2)
    >>> bool((chain.predict(X) == chain.run_stage(1, X, state)[0][:, 0]).all())
    True
    """

    regression = True

    def fit(
        self: _RegressorT,
        X: Rows,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> _RegressorT:
        """Fit the blocks one after the other and a head on each output.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every block's and head's ``fit`` that accepts it.

        Returns
        -------
        self : ChainExitsRegressor
        """
        self._fit_chain(X, y, sample_weight)
        return self

    def _answer(self, head, Z) -> np.ndarray:
        return regression_answers(head, Z)

    def predict(self, X: Rows) -> np.ndarray:
        """Prediction of the last head, after every block.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return exit_probas(self, X)[-1][:, 0]
