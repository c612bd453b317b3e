"""Checks of what the estimators are given: rows, stages and their classes."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from ._rowwise import row_sum
from ._sklearn_private import _check_sample_weight, _num_samples, _safe_indexing
from ._warnings import warn


def short_list(values, limit: int = 5) -> str:
    """Values for a message: the first ``limit`` and how many more.

    Examples
    --------
    >>> from skadaptive._validation import short_list
    >>> short_list(["a", "b", "c"], limit=2)
    "'a', 'b' and 1 more"
    """
    values = [v.item() if hasattr(v, "item") else v for v in values]
    shown = ", ".join(repr(v) for v in values[:limit])
    more = len(values) - limit
    return shown + (f" and {more} more" if more > 0 else "")


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


def tagged_type(estimator) -> str | None:
    """What the object's scikit-learn tags say it is (``"classifier"``,
    ``"regressor"``, ...; a :class:`~sklearn.frozen.FrozenEstimator`'s, its
    model's), or None where it has none (it is taken at its word)."""
    try:
        return estimator.__sklearn_tags__().estimator_type
    except Exception:  # not a scikit-learn estimator: it says nothing
        return None


def _holds_rows(X) -> bool:
    """Whether ``X`` is a collection (of rows), not a scalar, a string, a
    mapping or None; without converting it (it may refuse numpy's functions)."""
    if sp.issparse(X):  # first: scipy's DOK formats are dicts
        return True
    if X is None or isinstance(X, (str, bytes, dict)):
        return False
    if isinstance(X, (list, tuple)):
        return True
    shape = getattr(X, "shape", None)
    if shape is not None:
        return len(shape) > 0
    return hasattr(X, "__len__") or hasattr(X, "__array__")


def check_rows_given(X, name: str, count: bool = True) -> None:
    """Refuse what is not a collection of rows, before any stage sees it (a
    stage of texts would fail deep inside on a string, a mapping or None: it
    takes rows of any kind, so nothing else checks them), and with ``count``
    a collection of no rows."""
    if not _holds_rows(X):
        raise TypeError(
            f"{name} takes rows: an array, a DataFrame, a sparse matrix or a "
            "list with one entry per row (e.g. a list of texts); got "
            f"{type(X).__name__}. For one row, pass a list of one: [row]."
        )
    if count and _num_samples(X) == 0:
        raise ValueError(f"{name} needs at least one row to predict; X has 0 rows.")


def _is_raw_booster(obj) -> bool:
    """Whether ``obj`` is a ``lightgbm.Booster`` or ``xgboost.Booster``: a fitted
    model without ``fit``, recognised by its class's module (not imported)."""
    from .stages._booster_exits import is_raw_booster  # the stages import this

    return is_raw_booster(obj)


def _frozen_member_classes(member) -> np.ndarray:
    """A frozen member's classes (a Booster's: 0 .. n_classes - 1)."""
    model = member.estimator if isinstance(member, FrozenEstimator) else member
    if _is_raw_booster(model):
        from .stages._booster_exits import booster_classes

        return booster_classes(model)
    checked = getattr(model, "_classes_checked_against_model", None)
    if checked is not None:
        # An ONNX stage: its labels against its model's output columns.
        return np.asarray(checked())
    return np.asarray(member.classes_)


def check_frozen_is_fitted(member, label: str) -> None:
    """Refuse a FrozenEstimator of an unfitted model, naming it (``label``).

    A ready multi-exit source is not an estimator: only a FrozenEstimator can
    wrap something unfitted.
    """
    if isinstance(member, FrozenEstimator) and not _fitted(member):
        inner = getattr(member, "estimator", member)
        raise NotFittedError(
            f"{label} is a FrozenEstimator of an unfitted "
            f"{type(inner).__name__}: fit it before freezing it, or pass it "
            "unfrozen to be fitted here."
        )


def frozen_classes(names, members):
    """Classes shared by the frozen members, or None when none is frozen."""
    for name, member in zip(names, members):
        check_frozen_is_fitted(member, f"Stage {name!r}")
    frozen = []
    for name, member in zip(names, members):
        if is_frozen(member):
            try:
                frozen.append((name, _frozen_member_classes(member)))
            except ValueError as exc:
                # An ONNX stage checks its labels against its model here.
                raise ValueError(f"Stage {name!r}: {exc}") from exc
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


def warn_sample_weight_unused(name, member) -> None:
    """Warn that a member cannot take the weights (routing disabled)."""
    warn(
        f"Stage {name!r} ({type(member).__name__}) does not accept "
        "sample_weight; the weights are used for the policy only. "
        "Enable metadata routing to control this per stage.",
        UserWarning,
    )


def is_frozen(estimator) -> bool:
    """Whether a stage is used as given (never fitted by us).

    A ``FrozenEstimator``; an estimator whose tags say it needs no fit
    (``requires_fit=False``, as an :class:`~skadaptive.stages.OnnxClassifier`,
    trained already: cross-fitting it would only repeat its answers), unless
    it is one of scikit-learn's own (``GaussianProcessRegressor`` is tagged so
    because it predicts from its prior before a fit: it is fitted like any
    other stage); a ready multi-exit source that cannot be fitted (it has
    ``run_stage`` but no ``fit``, as a split ONNX network); or a LightGBM or
    XGBoost ``Booster`` (trained already, no ``fit``).
    """
    if isinstance(estimator, FrozenEstimator):
        return True
    if not hasattr(estimator, "fit"):
        return hasattr(estimator, "run_stage") or _is_raw_booster(estimator)
    if type(estimator).__module__.split(".")[0] == "sklearn":
        return False
    try:
        return get_tags(estimator).requires_fit is False
    except (TypeError, ValueError, AttributeError):
        return False


def check_frozen_rows(names, members, X, method: str) -> None:
    """Refuse rows that a frozen stage cannot answer, naming the stage.

    Each frozen member with ``method`` answers the first row of ``X`` once:
    where it refuses it (a model fitted on another number of features or on
    other columns), its own error would come from deep inside a fit that
    cross-fits the other stages, without saying which stage it is. A probe,
    not a comparison of ``n_features_in_``: a pipeline that selects columns
    by name takes more columns, in any order, than it was fitted on.
    """
    if _num_samples_or_none(X) in (None, 0):
        return
    first = _safe_indexing(X, [0])
    for name, member in zip(names, members):
        if (
            not is_frozen(member)
            or not hasattr(member, method)
            # A raw Booster's predict is the library's (XGBoost's takes a
            # DMatrix): it checks rows its own way.
            or _is_raw_booster(getattr(member, "estimator", member))
        ):
            continue
        try:
            getattr(member, method)(first)
        except NotFittedError:
            continue  # refused with its own message where stages are checked
        except (ValueError, TypeError, KeyError, IndexError) as error:
            if type(error).__module__.startswith("skadaptive"):
                continue  # the package's own checks, named where outputs are
            model = type(getattr(member, "estimator", member)).__name__
            said = str(error).strip()
            said += "" if said.endswith((".", "!", "?")) else "."
            raise ValueError(
                f"Stage {name!r} (a frozen {model}) refused the first row of X: "
                f"{said} A frozen stage answers X as given: pass the rows it "
                "was trained on (the same columns), or pass it unfrozen to be "
                "fitted here."
            ) from error


def _num_samples_or_none(X):
    try:
        return _num_samples(X)
    except TypeError:
        return None


def _fitted(estimator) -> bool:
    if _is_raw_booster(getattr(estimator, "estimator", estimator)):
        return True  # a Booster is a trained model (and not an estimator)
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


#: Rows of a stage's probabilities must sum to 1 within this (float32 networks
#: sum to 1 within about 1e-6; scikit-learn's classifiers within 1e-12).
PROBA_SUM_TOL = 1e-4


def stage_label(source, stage: int) -> str:
    """How messages name one stage of a source: its name where it has one."""
    names = getattr(source, "stage_names", None)
    if names is not None:
        return f"stage {names[stage]!r}"
    return f"exit {stage}"


class StageOutputError(ValueError):
    """A stage refused its own answers (an ONNX model's output that is not
    finite, a regressor's with more than one column).

    A stage does not know its name in a cascade: a source that does says
    which stage (:meth:`~skadaptive.stages._independent.IndependentStages.run_stage`).
    """


def check_stage_proba(proba, n_rows: int, n_classes: int, label: str) -> np.ndarray:
    """A stage's probabilities, checked where they enter the package.

    Parameters
    ----------
    proba : array-like
        What the stage returned for ``n_rows`` rows.
    n_rows : int
    n_classes : int
        The number of classes in the stage's own ``classes_``.
    label : str
        Names the stage in messages (e.g. ``"stage 'hgb'"``).

    Returns
    -------
    proba : ndarray of shape (n_rows, n_classes)
        As float64.

    Raises
    ------
    ValueError
        Naming the stage, the check and how many rows fail it: the shape is
        not one column per class for each row, or some rows have values that
        are not finite, negative values, or do not sum to 1 within
        ``PROBA_SUM_TOL``. The package never answers from such rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive._validation import check_stage_proba
    >>> check_stage_proba(np.array([[0.5, 0.6]]), 1, 2, "stage 'lr'")
    Traceback (most recent call last):
    ...
    ValueError: stage 'lr' returned invalid probabilities: rows that do not sum to 1 ...
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n_rows, n_classes):
        raise ValueError(
            f"{label} returned probabilities of shape {proba.shape} for {n_rows} "
            f"rows; expected ({n_rows}, {n_classes}): one column for each of the "
            f"{n_classes} classes in its classes_. Check the stage's predict_proba "
            "(a model fitted on one class may still return two columns)."
        )
    if n_rows == 0:
        return proba
    # The common case in a few whole-array passes (routing runs this at every
    # exit); the per-row account below only when something is wrong.
    if (
        np.isfinite(proba).all()
        and not (proba < 0).any()
        and (np.abs(row_sum(proba) - 1) <= PROBA_SUM_TOL).all()
    ):
        return proba
    finite = np.isfinite(proba).all(axis=1)
    problems = []
    if not finite.all():
        problems.append(f"values that are not finite (NaN or inf) in {_rows(~finite)}")
    negative = finite & (proba < 0).any(axis=1)
    if negative.any():
        problems.append(f"negative values in {_rows(negative)}")
    off = finite & (np.abs(row_sum(proba) - 1) > PROBA_SUM_TOL)
    if off.any():
        problems.append(f"rows that do not sum to 1 ({_rows(off)})")
    if problems:
        raise ValueError(
            f"{label} returned invalid probabilities: "
            + "; ".join(problems)
            + ". The package never answers from them: fix or calibrate the stage "
            "(e.g. CalibratedClassifierCV), or check its input."
        )
    return proba


def check_regression_output(output, n_rows: int, label: str) -> np.ndarray:
    """A regression stage's answers, checked where they enter the package.

    Parameters
    ----------
    output : array-like
        What the stage returned for ``n_rows`` rows: its prediction (column 0)
        and its uncertainty (column 1, 0 where the stage gives none).
    n_rows : int
    label : str
        Names the stage in messages.

    Returns
    -------
    output : ndarray of shape (n_rows, 2)
        As float64.

    Raises
    ------
    ValueError
        Naming the stage, the check and how many rows fail it: the shape is
        not one prediction per row, or some rows have predictions that are
        not finite, or an uncertainty that is negative or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive._validation import check_regression_output
    >>> check_regression_output(np.array([[np.nan, 0.0]]), 1, "stage 'ridge'")
    Traceback (most recent call last):
    ...
    ValueError: stage 'ridge' returned invalid predictions: values that are not ...
    """
    output = np.asarray(output, dtype=np.float64)
    if output.ndim == 2 and output.shape[1] == 2 and output.shape[0] != n_rows:
        # The package's (prediction, uncertainty) pairs: the stage itself
        # returned a prediction per row for too few or too many rows.
        raise ValueError(
            f"{label} returned {output.shape[0]} predictions for {n_rows} rows; "
            "a stage must return exactly one prediction per row it is given "
            "(none dropped or added)."
        )
    if output.shape != (n_rows, 2):
        raise ValueError(
            f"{label} returned predictions of shape {output.shape} for {n_rows} "
            f"rows; expected ({n_rows}, 2): one prediction and its uncertainty "
            "per row. Check that the stage is a single-output regressor."
        )
    if n_rows == 0 or (np.isfinite(output).all() and not (output[:, 1] < 0).any()):
        return output
    finite = np.isfinite(output).all(axis=1)
    problems = []
    if not finite.all():
        problems.append(f"values that are not finite (NaN or inf) in {_rows(~finite)}")
    negative = finite & (output[:, 1] < 0)
    if negative.any():
        problems.append(f"negative uncertainties in {_rows(negative)}")
    raise ValueError(
        f"{label} returned invalid predictions: "
        + "; ".join(problems)
        + ". The package never answers from them: check the stage and its input."
    )


def check_exit_output(source, output, n_rows: int, label: str) -> np.ndarray:
    """:func:`check_stage_proba`, or for a regression source
    :func:`check_regression_output`, of what ``source`` returned."""
    if getattr(source, "regression", False):
        return check_regression_output(output, n_rows, label)
    return check_stage_proba(output, n_rows, len(source.classes_), label)


def rows_text(count: int) -> str:
    """``"1 row"``, ``"2 rows"``: a count of rows, for messages.

    Examples
    --------
    >>> from skadaptive._validation import rows_text
    >>> rows_text(1), rows_text(64)
    ('1 row', '64 rows')
    """
    return f"{count} row{'s' if count != 1 else ''}"


def _rows(mask: np.ndarray) -> str:
    return f"{int(mask.sum())} of {rows_text(len(mask))}"


def unique_labels(y) -> np.ndarray:
    """The sorted distinct labels of ``y``, or a clear error for mixed types.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive._validation import unique_labels
    >>> unique_labels(np.array(["b", "a", "b"])).tolist()
    ['a', 'b']
    >>> unique_labels(np.array([0, "a"], dtype=object))
    Traceback (most recent call last):
    ...
    ValueError: y mixes labels of different types (int, str)...
    """
    try:
        return np.unique(y)
    except TypeError:
        kinds = ", ".join(sorted({type(label).__name__ for label in y}))
        # numpy's "'<' not supported between ..." adds nothing: not chained.
        raise ValueError(
            f"y mixes labels of different types ({kinds}), which cannot be "
            "sorted into one classes_; use labels of one type (e.g. all str)."
        ) from None


def members_refusing_nan(names, members) -> list[tuple[str, str]]:
    """``(name, type name)`` of the members that do not take NaN (see
    :func:`nan_fate`).

    A FrozenEstimator's model decides for it, and names it. Names only: an
    estimator keeps this, and a member kept here too would be saved again
    with it (skops writes an object once for every place it is held).
    """
    refusing = []
    for name, member in zip(names, members):
        model = getattr(member, "estimator", member)
        if nan_fate(model) == "refuses":
            refusing.append((name, type(model).__name__))
    return refusing


def nan_fate(estimator) -> str:
    """What ``estimator`` does with NaN in its input, from its tags.

    ``"clears"``: it replaces NaN (an imputer; a ColumnTransformer whose
    every part clears or drops its columns; a Pipeline with such a step
    before any step that refuses); ``"passes"``: it takes NaN and may pass
    it on (a scaler; a model that takes NaN, e.g. HistGradientBoosting);
    ``"refuses"``: its ``allow_nan`` tag is False, or a Pipeline reaches such
    a step with NaN still in. A Pipeline's own tag only reads its first step
    (a scaler passes NaN to a model that refuses it), and a ColumnTransformer
    says False even around imputers, so both are walked instead.
    """
    if estimator is None or (
        isinstance(estimator, str) and estimator in ("passthrough", "drop")
    ):
        return "clears" if estimator == "drop" else "passes"
    if _is_raw_booster(estimator):
        return "passes"  # LightGBM and XGBoost read NaN as missing
    if hasattr(estimator, "steps"):  # a Pipeline: NaN flows through the steps
        for _, step in estimator.steps:
            fate = nan_fate(step)
            if fate != "passes":
                return fate
        return "passes"
    if hasattr(estimator, "transformers") and hasattr(estimator, "remainder"):
        # A ColumnTransformer: each part sees its own columns.
        parts = [part for _, part, _ in estimator.transformers]
        fates = {nan_fate(part) for part in [*parts, estimator.remainder]}
        if "refuses" in fates:
            return "refuses"
        return "clears" if fates == {"clears"} else "passes"
    if type(estimator).__module__.split(".")[:2] == ["sklearn", "impute"]:
        return "clears"  # SimpleImputer, KNNImputer, IterativeImputer, ...
    try:
        allow_nan = get_tags(estimator).input_tags.allow_nan
    except (TypeError, ValueError, AttributeError):
        allow_nan = False
    return "passes" if allow_nan else "refuses"


def check_missing_values(X, refusing) -> None:
    """Refuse NaN in ``X`` up front unless every stage accepts it.

    A stage that does not accept missing values may see a row only if the
    stages before it defer it, so without this check whether a row with NaN
    is answered or raises would depend on the policy and on which rows share
    its batch. Decided once per call, from the stages' ``allow_nan`` tags:
    either every stage takes NaN, or no row with NaN is taken (a Pipeline
    takes what its first step takes, e.g. an imputer). Arrays, lists, sparse
    matrices and DataFrames are inspected; NaN and None count as missing.
    ``refusing`` is :func:`members_refusing_nan` of the stages.
    """
    if not refusing:
        return
    missing = _rows_with_nan(X)
    if missing:
        name, kind = refusing[0]
        if not isinstance(kind, str):
            # Kept by a model saved before names were: the member itself.
            kind = type(getattr(kind, "estimator", kind)).__name__
        raise ValueError(
            f"X has NaN in {rows_text(missing)}, and stage "
            f"{name!r} ({kind}) does not accept missing values, "
            "so rows with NaN are refused whichever stage would see them. Impute "
            "them first (a SimpleImputer in a Pipeline around the estimator, or "
            "as the first step of that stage), or use stages that all accept NaN "
            "(e.g. scikit-learn's HistGradientBoosting models)."
        )


def _rows_with_nan(X) -> int:
    """The number of rows of a numeric ``X`` with a NaN (0 for other inputs)."""
    if sp.issparse(X):
        if X.dtype.kind != "f":
            return 0
        rows = X.tocsr() if X.format != "csr" else X
        nan = np.isnan(rows.data)
        if not nan.any():
            return 0
        row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        return len(np.unique(row_of[nan]))
    if hasattr(X, "isna") and hasattr(X, "select_dtypes"):  # a DataFrame
        return int(X.isna().to_numpy().any(axis=1).sum()) if X.size else 0
    if isinstance(X, list | tuple):
        X = np.asarray(X, dtype=object)
    if isinstance(X, np.ndarray) and X.dtype == object:
        missing = _IS_MISSING(X).astype(bool)
        return int(missing.reshape(len(X), -1).any(axis=1).sum()) if X.size else 0
    if isinstance(X, np.ndarray) and X.dtype.kind == "f":
        # A sum is NaN if any value is (or inf meets -inf), and needs no copy
        # of X; only then are the rows counted, a chunk at a time.
        with np.errstate(invalid="ignore", over="ignore"):
            if not np.isnan(X.sum()):
                return 0
        if X.ndim == 1:
            return int(np.isnan(X).sum())
        rows = X.reshape(len(X), -1)
        return sum(
            int(np.isnan(rows[start : start + _CHUNK_ROWS]).any(axis=1).sum())
            for start in range(0, len(rows), _CHUNK_ROWS)
        )
    return 0


#: Whether each value of an object array is missing (None or a float NaN).
_IS_MISSING = np.frompyfunc(
    lambda value: value is None or (isinstance(value, float) and value != value), 1, 1
)
#: Rows checked at a time for NaN (bounds the memory of the check).
_CHUNK_ROWS = 65_536


def check_weights(sample_weight, X):
    """``sample_weight`` checked for the rows of ``X``, or None.

    One non-negative, finite weight per row (scikit-learn's own check), and a
    clear error where their sum overflows: every average the package reports
    or optimises divides by it, and weights near the largest float (e.g.
    ``1e306`` on a few hundred rows) sum to infinity, which would make every
    figure NaN.
    """
    if sample_weight is None:
        return None
    weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
    with np.errstate(over="ignore"):
        total = np.sum(weight)
    if not np.isfinite(total):
        raise ValueError(
            "sample_weight sums to more than float64 can hold "
            f"(largest weight {np.max(weight):.3g}): divide the weights "
            "by a common factor. Each row counts by its weight as that many "
            "copies of it, so keep them in a range that sums to a finite number."
        )
    return weight


def check_row_weights(sample_weight, y):
    """Weights of the rows of ``y`` checked for scoring, or None.

    :func:`check_weights`, and a sum above zero: a weighted average of the
    rows is then defined.
    """
    weight = check_weights(sample_weight, y)
    if weight is not None and not weight.sum() > 0:
        raise ValueError(
            "sample_weight sums to zero: no row counts, so no average is "
            "defined; give at least one row a positive weight."
        )
    return weight
