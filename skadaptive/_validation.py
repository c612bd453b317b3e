"""Checks of what the estimators are given: rows, stages and their classes."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted


def indexable(X):
    """``X`` as given where rows can be selected from it, else converted.

    Stages get ``X`` unconverted (lists of texts, DataFrames, sparse matrices), but
    the estimator must select rows: sparse formats without row indexing (COO,
    DIA, BSR, ...) become CSR and objects that only implement ``__array__``
    become arrays, as :func:`sklearn.utils.indexable` does.
    """
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsr()
    if not (hasattr(X, "__getitem__") or hasattr(X, "iloc")):
        return np.asarray(X)
    return X


def frozen_classes(names, members):
    """Classes shared by the frozen members, or None when none is frozen."""
    for name, member in zip(names, members):
        # A ready multi-exit source is not an estimator: only a FrozenEstimator
        # can wrap something unfitted.
        if isinstance(member, FrozenEstimator) and not _fitted(member):
            inner = getattr(member, "estimator", member)
            raise NotFittedError(
                f"Stage {name!r} is a FrozenEstimator of an unfitted "
                f"{type(inner).__name__}: fit it before freezing it, or pass it "
                "unfrozen to be fitted here."
            )
    frozen = [
        (n, np.asarray(s.classes_)) for n, s in zip(names, members) if is_frozen(s)
    ]
    if not frozen:
        return None
    first_name, first = frozen[0]
    if len(first) > 1 and not np.all(first[:-1] < first[1:]):
        # Probability columns are matched to labels by sorted lookup, as in
        # scikit-learn, whose classifiers always sort classes_.
        raise ValueError(
            f"Frozen stage {first_name!r} has classes_ {first.tolist()}, which are "
            "not sorted and unique; scikit-learn classifiers sort classes_. Wrap "
            "the model so that classes_ is sorted and its probability columns "
            "follow that order."
        )
    for name, classes in frozen[1:]:
        if not np.array_equal(classes, first):
            raise ValueError(
                f"Frozen stages disagree on their classes: {first_name!r} predicts "
                f"{first.tolist()} but {name!r} predicts {classes.tolist()}. Every "
                "stage must predict the same classes in the same order; refit or "
                "re-export the stages on the same label set."
            )
    return first


def warn_sample_weight_unused(name, member, stacklevel=4) -> None:
    """Warn that a member cannot take the weights (routing disabled)."""
    warnings.warn(
        f"Stage {name!r} ({type(member).__name__}) does not accept "
        "sample_weight; the weights are used for the policy only. "
        "Enable metadata routing to control this per stage.",
        UserWarning,
        stacklevel=stacklevel,
    )


def is_frozen(estimator) -> bool:
    """Whether a stage is used as given (never fitted by us).

    A ``FrozenEstimator``; an estimator whose tags say it needs no fit
    (``requires_fit=False``, as an :class:`~skadaptive.stages.OnnxClassifier`,
    trained already: cross-fitting it would only repeat its answers); or a ready
    multi-exit source that cannot be fitted (it has ``run_stage`` but no
    ``fit``, as a split ONNX network).
    """
    if isinstance(estimator, FrozenEstimator):
        return True
    if not hasattr(estimator, "fit"):
        return hasattr(estimator, "run_stage")
    try:
        return get_tags(estimator).requires_fit is False
    except (TypeError, ValueError, AttributeError):
        return False


def _fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True
