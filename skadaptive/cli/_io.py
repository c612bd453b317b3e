"""Reading data and stage models from files, with errors that name the problem."""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._validation import short_list, tagged_type


class CommandError(Exception):
    """A problem with the command's files or arguments: shown without traceback."""


def _existing(path: str) -> Path:
    file = Path(path)
    if not file.exists():
        raise CommandError(f"{path}: no such file.")
    if file.is_dir():
        raise CommandError(f"{path}: is a directory, expected a file.")
    return file


#: scikit-learn's warning that rows without column names reach a model fitted
#: with them: the CLI matches a CSV's columns to the models' by name first
#: (:func:`align_columns`), and other files have no names to match.
FEATURE_NAMES_WARNING = "X does not have valid feature names"


@contextmanager
def recorded_warnings(category=Warning):
    """Record every warning of ``category`` (to report), but scikit-learn's
    feature-names one (see :data:`FEATURE_NAMES_WARNING`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
        yield caught


def check_output(option: str, path: str | None) -> None:
    """Fail now, before any work, when ``path`` cannot be written.

    A missing folder found after a fit of several minutes loses the fit.
    """
    if path is None:
        return
    file = Path(path)
    if file.is_dir() or str(path).endswith(("/", os.sep)):
        raise CommandError(f"{option} {path}: is a folder; give a file name.")
    if file.is_symlink() and not file.exists():
        # A link to a file not made yet: the write makes its target.
        file = Path(os.path.realpath(file))
    folder = file.parent  # Path("f.json").parent is Path(".")
    if not folder.exists():
        raise CommandError(
            f"{option} {path}: the folder {str(folder)!r} does not exist; create it "
            "first."
        )
    if not folder.is_dir():
        raise CommandError(f"{option} {path}: {str(folder)!r} is not a folder.")
    try:
        if file.is_file():
            # Opened to append and closed at once: its content is untouched
            # (permissions alone do not say: a root user passes every check).
            with open(file, "ab"):
                pass
        elif file.exists():
            # A pipe or a device is not opened before the write (opening a
            # pipe to test it would end its reader's input).
            if not os.access(file, os.W_OK):
                raise PermissionError(13, "Permission denied", str(file))
        else:
            # A new file: whether the folder takes one is tried with a file of
            # its own (some folders, such as /proc, take none).
            with tempfile.TemporaryFile(dir=folder):
                pass
    except OSError as exc:
        raise CommandError(
            f"{option} {path}: cannot write there ({exc.strerror or exc})."
        ) from exc


def check_distinct(outputs: dict, inputs: list) -> None:
    """Refuse an output (``{option: path}``) that is an input's file or
    another output's: writing it would replace what the command reads or
    what it wrote a moment before."""
    read = {Path(path).resolve(): path for path in inputs}
    written = {}
    for option, path in outputs.items():
        if path is None:
            continue
        resolved = Path(path).resolve()
        # A hard link is another name of the same file: compare the files.
        same = [
            name
            for where, name in read.items()
            if where == resolved or _same_file(where, resolved)
        ]
        if same:
            raise CommandError(
                f"{option} {path}: is an input of the command ({same[0]}); "
                "writing it would overwrite it. Choose another file."
            )
        if resolved in written:
            raise CommandError(
                f"{option} {path}: is also the file of {written[resolved]}; give "
                "each output its own file."
            )
        written[resolved] = option


def _same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths name one file (hard links included)."""
    try:
        return first.samefile(second)
    except OSError:
        return False


def check_plot(option: str, path: str | None) -> None:
    """:func:`check_output`, and a plot format matplotlib writes (by the
    file's extension), before any work."""
    check_output(option, path)
    if path is None:
        return
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:  # said when the plot is to be drawn
        return
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    extension = Path(path).suffix.lower().lstrip(".")
    if extension not in formats:
        raise CommandError(
            f"{option} {path}: "
            + (
                f"matplotlib cannot write .{extension} files"
                if extension
                else "no file extension"
            )
            + f"; end the name with one of {', '.join('.' + f for f in formats)} "
            "(e.g. .png)."
        )


def seed(text: str) -> int:
    """An ``argparse`` type: a seed NumPy takes (0 to 2**32 - 1)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"must be from 0 to 4294967295 (2**32 - 1); got {value}"
        )
    return value


def split_rows(X, y, test_size: float, seed: int, path: str, stratify=None):
    """``train_test_split`` of the rows into policy and held-out rows, with
    an error naming the fix where the file has too few rows for it."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(
            X, y, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        if stratify is not None:
            raise  # the caller falls back to an unstratified split
        raise CommandError(
            f"{path}: {len(X)} rows cannot be split with --test-size {test_size} "
            f"({exc}); the policy rows and the held-out rows each need rows: "
            "use more rows or a --test-size nearer 0.5."
        ) from exc


def load_data(
    path: str,
    *,
    label: str | None = None,
    x_key: str = "X",
    y_key: str = "y",
    require_labels: bool = True,
) -> tuple:
    """Rows, labels and column names from a ``.npz``, ``.npy`` or CSV file.

    - ``.npz``: arrays ``x_key`` (rows) and ``y_key`` (labels; optional when
      ``require_labels`` is False).
    - ``.npy``: a 2-D array; the label is its last column (or the column index
      ``label``) unless ``require_labels`` is False, then all columns are rows.
    - ``.csv``: a header row; the label column is ``label`` (default: the
      column named ``label``, else the last column). Without labels, every
      column is a feature unless ``label`` names one. An empty feature cell
      is a missing value (NaN), as pandas writes one.

    Labels of shape (n, 1) are taken as one column. Returns ``(X, y,
    names)``: ``y`` None without labels, ``names`` the feature columns' names
    (a CSV's header), else None.
    """
    file = _existing(path)
    names = None
    suffix = file.suffix.lower()
    try:
        if suffix == ".npz":
            if label is not None:
                raise CommandError(
                    f"{path}: --label names a CSV column or a .npy column index; "
                    "the labels of an .npz file are an array: pass --y-key."
                )
            with np.load(file, allow_pickle=False) as arrays:
                if x_key not in arrays:
                    raise CommandError(
                        f"{path}: no array named {x_key!r} (it has "
                        f"{sorted(arrays.files)}); pass --x-key."
                    )
                X = arrays[x_key]
                y = arrays[y_key] if y_key in arrays else None
                if y is not None and y.dtype.kind == "f":
                    # Whole-valued float labels are whole numbers, as a .npy
                    # or CSV file's label column is.
                    y = _numeric_if_possible(y)
            if y is None and require_labels:
                raise CommandError(
                    f"{path}: no array named {y_key!r} for the labels (it has "
                    f"{sorted(np.load(file).files)}); pass --y-key."
                )
        elif suffix in (".npy", ".csv", ".txt") and (x_key != "X" or y_key != "y"):
            raise CommandError(
                f"{path}: --x-key and --y-key name arrays of an .npz file; a "
                f"{suffix} file's label is a column: pass --label."
            )
        elif suffix == ".npy":
            array = np.load(file, allow_pickle=False)
            if array.ndim != 2:
                raise CommandError(
                    f"{path}: expected a 2-D array of rows; got shape {array.shape}."
                )
            if require_labels or label is not None:
                column = -1 if label is None else _column_index(label, array, path)
                y = _numeric_if_possible(array[:, column])
                X = np.delete(array, column, axis=1)
            else:
                X, y = array, None
        elif suffix in (".csv", ".txt"):
            X, y, names = _read_csv(file, label, require_labels)
        else:
            raise CommandError(
                f"{path}: unknown data format {suffix!r}; use .npz, .npy or .csv."
            )
    except (OSError, ValueError) as exc:
        hint = ""
        if "allow_pickle=False" in str(exc):
            # np.save of an object array (labels from pandas, mixed values).
            hint = (
                ". Arrays of Python objects are not read (they would run code "
                "from the file): save numbers, and labels as strings "
                "(y.astype(str)) or numbers."
            )
        elif isinstance(exc, UnicodeDecodeError):
            hint = (
                ": a CSV file is read as UTF-8; save it so (pandas: "
                "df.to_csv(path, index=False, encoding='utf-8'))"
            )
        raise CommandError(f"{path}: cannot read it as data: {exc}{hint}") from exc
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.dtype.kind not in "biuf":
        raise CommandError(
            f"{path}: the feature columns must be numbers; got dtype {X.dtype}."
        )
    if y is not None:
        y = _one_column(y, path)
    if y is not None and len(y) != len(X):
        raise CommandError(
            f"{path}: {len(X)} rows but {len(y)} labels; they must match."
        )
    if len(X) == 0:
        raise CommandError(f"{path}: no rows.")
    X = X.astype(np.float64, copy=False)
    return X, y, names


def _one_column(y, path: str) -> np.ndarray:
    """The labels as one column: (n, 1) is one column; other shapes refused."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise CommandError(
            f"{path}: the labels must be one column; got an array of shape "
            f"{y.shape}. Check --y-key (or --label)."
        )
    return y


def _named_columns(model) -> list:
    """``(kind, names)`` of what ``model`` was fitted on: its own
    ``feature_names_in_`` (a FrozenEstimator hands its model's on), else the
    CSV columns ``frontier --save`` kept (``column_names_``), else, for a
    saved skadaptive estimator fitted on an array, its stages'."""
    from .._base import BaseAdaptive

    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [(type(model).__name__, names)]
    # The CSV columns `skadaptive frontier --save` fitted it on.
    names = getattr(model, "column_names_", None)
    if names is not None:
        return [(f"{type(model).__name__} (saved from a CSV)", names)]
    if isinstance(model, BaseAdaptive):
        stages = getattr(model, "estimators_", None) or [model.estimator_]
        return [pair for stage in stages for pair in _named_columns(stage)]
    return []


def fitted_feature_names(models) -> list | None:
    """The column names the fitted ``models`` were fitted on (their
    ``feature_names_in_``; a FrozenEstimator's or a saved cascade's stages'),
    or None when none says; models fitted on different columns are an error."""
    seen = {}
    for model in models:
        for kind, names in _named_columns(model):
            seen[tuple(str(n) for n in names)] = kind
    if not seen:
        return None
    if len(seen) > 1:
        raise CommandError(
            "the models were fitted on different columns ("
            + "; ".join(f"{kind}: {_short(list(n))}" for n, kind in seen.items())
            + "); refit them on the same columns."
        )
    return list(next(iter(seen)))


def align_columns(X, names, fitted, path: str):
    """``X``'s columns in the order the models were fitted on, by name.

    Only a CSV has names (``names``); the models' (``fitted``) come from
    :func:`fitted_feature_names`. Columns in another order are reordered; a
    column missing or one the models do not know is an error. Without names
    on either side ``X`` is returned as it is.
    """
    if names is None or fitted is None:
        return X
    missing = [n for n in fitted if n not in names]
    unknown = [n for n in names if n not in fitted]
    if not missing and len(unknown) == 1:
        raise CommandError(
            f"{path}: the models were fitted on the columns {_short(fitted)}; "
            f"the file also has {unknown[0]!r}: if it is the label (or target) "
            f"column, pass --label {unknown[0]}."
        )
    if missing or unknown:
        raise CommandError(
            f"{path}: the models were fitted on the columns {_short(fitted)}; "
            + (f"the file lacks {_short(missing)}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"the file has {_short(unknown)} besides" if unknown else "")
            + " (the label column, if one of them, is named with --label)."
        )
    return X[:, [names.index(n) for n in fitted]]


def _first_bad_cell(body, columns) -> tuple[int, int]:
    """The first (row, column) of ``body`` whose cell is not a number."""
    for line, row in enumerate(body):
        for column in columns:
            try:
                _feature(row[column])
            except ValueError:
                return line, column
    raise AssertionError("no cell to blame")  # pragma: no cover


def file_order_note(names, fitted, path: str) -> str | None:
    """A note where the columns are taken in the file's order, which nothing
    can check: a CSV's named columns for models that know no names, or the
    unnamed columns of an .npz or .npy file for models that know theirs."""
    if names is not None and fitted is None:
        return (
            "the models know no column names (they were fitted on arrays), so "
            f"the columns of {path} are taken in the file's order "
            f"({_short(names, 4)}): it must be the order the models were "
            "fitted on."
        )
    if names is None and fitted is not None:
        return (
            f"{path} has no column names, so its columns are taken in their "
            "order: it must be the order the models were fitted on, "
            f"{_short(fitted, 4)} (a CSV with a header row is matched by name)."
        )
    return None


def _short(values, limit: int = 8) -> str:
    """A list for a message: its first ``limit`` values and how many more."""
    return f"[{short_list(list(values), limit)}]"


def _column_index(label: str, array: np.ndarray, path: str) -> int:
    try:
        index = int(label)
    except ValueError as exc:
        raise CommandError(
            f"{path}: a .npy file has no column names; --label must be a column "
            f"index, got {label!r}."
        ) from exc
    if not -array.shape[1] <= index < array.shape[1]:
        raise CommandError(
            f"{path}: --label {index} is out of range for {array.shape[1]} columns."
        )
    return index


#: Separators of files saved as "CSV" by other tools (Excel in many locales,
#: tab-separated exports): a header of one column holding one of them.
_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _read_csv(file: Path, label: str | None, require_labels: bool):
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the
    # first column's name, which would then match no --label nor model column.
    with open(file, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    # Blank lines are no rows (as pandas reads them); each row keeps its
    # line in the file for the messages.
    numbered = [(k + 2, row) for k, row in enumerate(rows[1:]) if row]
    if not numbered:
        raise CommandError(f"{file}: expected a header row and at least one row.")
    header = rows[0]
    lines, body = zip(*numbered)
    # A header of one column holding another separator: a file separated
    # otherwise, unless its rows are one column without it as well (a
    # column may be named "x;ratio"). Rows of several columns are a file
    # separated by semicolons with decimal commas ("0,5;1,2").
    separator = next(
        (
            s
            for s in _OTHER_SEPARATORS
            if len(header) == 1
            and s in header[0]
            and not all(len(row) == 1 and s not in row[0] for row in body[:5])
        ),
        None,
    )
    if separator is not None:
        raise CommandError(
            f"{file}: its header is one column, {_clip(header[0])!r}, of names "
            f"separated by {_OTHER_SEPARATORS[separator]}: a CSV file here is "
            "separated by commas. Save it with commas (pandas: "
            "df.to_csv(path, index=False)), or as .npz."
        )
    if _all_numbers(header) and [h.strip() for h in header] != [
        str(i) for i in range(len(header))
    ]:
        raise CommandError(
            f"{file}: its first row is all numbers, so it looks like data, not a "
            "header row of column names; add a header row (or save the rows as "
            ".npy or .npz)."
        )
    widths = {len(row) for row in body}
    if widths != {len(header)}:
        raise CommandError(
            f"{file}: every row must have the header's {len(header)} columns; "
            f"found rows with {sorted(widths)}."
        )
    if label is None and (require_labels or "label" in header):
        label = _default_label(header)
    if label is not None and label not in header:
        raise CommandError(
            f"{file}: no column {label!r}; columns are {header}. Pass --label "
            "with the name of the labels' column."
        )
    columns = [i for i, name in enumerate(header) if name != label]
    try:
        X = np.array([[_feature(row[i]) for i in columns] for row in body])
    except ValueError as exc:
        line, column = _first_bad_cell(body, columns)
        raise CommandError(
            f"{file}: column {header[column].strip()!r} holds "
            f"{body[line][column]!r} on line {lines[line]} (the header is line 1), "
            f"which is not a number ({exc}). Features must be numbers; name the "
            "label column with --label if it is that one."
        ) from exc
    names = [header[i].strip() for i in columns]
    if label is None:
        return X, None, names
    index = header.index(label)
    labels = _numeric_if_possible(np.array([row[index].strip() for row in body]))
    return X, labels, names


def last_column_label_note(path: str, label: str | None) -> str | None:
    """Where a CSV's labels were taken from its last column, for want of a
    column named ``label`` or of ``--label``: a note naming that column, else
    None."""
    if label is not None or Path(path).suffix.lower() not in (".csv", ".txt"):
        return None
    # The header as the loader reads it: the first line, names as written.
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header or _default_label(header) == "label":
        return None
    return (
        f"the labels are {path}'s last column, {header[-1]!r} (no column is "
        "named exactly 'label'); pass --label NAME to take another."
    )


def _default_label(header: list) -> str:
    """The label column of a CSV without ``--label``: the one named ``label``,
    else the last."""
    return "label" if "label" in header else header[-1]


def _clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _feature(cell: str) -> float:
    """A CSV cell as a feature value: an empty cell is a missing value (NaN),
    as pandas writes one."""
    return float(cell) if cell.strip() else np.nan


def _all_numbers(cells) -> bool:
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True


def _numeric_if_possible(labels: np.ndarray) -> np.ndarray:
    """Labels as whole numbers or numbers where they all are, else as text.

    Numeric labels must stay numeric to match the models' classes: ``"1"``,
    ``"1.0"`` and ``1`` are one class.
    """
    try:
        numbers = labels.astype(np.float64)
    except ValueError:
        return labels
    if not np.isfinite(numbers).all():
        return labels
    # Whole numbers become integers only where float64 holds every integer
    # exactly (below 2**53): a larger float is always whole, and a target of
    # 1e20 cast to int64 would overflow.
    if np.array_equal(numbers, np.round(numbers)) and (
        np.abs(numbers).max(initial=0.0) < 2.0**53
    ):
        return numbers.astype(np.int64)
    return numbers


def load_joblib(path: str):
    """The object saved with joblib (or pickle) in ``path``."""
    import joblib

    file = _existing(path)
    if str(path).lower().endswith(".onnx"):
        raise CommandError(
            f"{path}: an ONNX model, not a model saved with joblib. A cascade of "
            "ONNX stages is built and saved by `skadaptive frontier a.onnx "
            "b.onnx --data FILE --save cascade.joblib`; predict and recalibrate "
            "take that saved file."
        )
    try:
        return joblib.load(file)
    except Exception as exc:  # unpickling can raise anything
        raise CommandError(
            f"{path}: cannot load it with joblib ({type(exc).__name__}: {exc}); "
            "it must be a model saved with joblib.dump (or `skadaptive frontier "
            "--save`)."
        ) from exc


#: File name endings of models saved with joblib or pickle.
JOBLIB_SUFFIXES = (".joblib", ".pkl", ".pickle")


def load_stage(path: str, classes: np.ndarray | None, X, model=None):
    """A fitted stage from an ``.onnx`` file or a joblib/pickle file, frozen.

    An ONNX model gets ``classes``, the labels of its output columns in its
    column order, and is checked against the rows ``X`` (its input shape).
    A joblib model has its own ``classes_``; ``classes`` is not used.
    ``model`` is the object already loaded from a joblib file, if it was.
    """
    from sklearn.frozen import FrozenEstimator

    file = _existing(path)
    suffix = file.suffix.lower()
    if suffix == ".onnx":
        from ..stages.onnx import OnnxClassifier

        try:
            model = OnnxClassifier(str(file), classes=classes).fit(
                _probe_row(X), np.asarray(classes)[:1]
            )
            return FrozenEstimator(model)
        except (ImportError, ValueError, TypeError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
    if suffix in JOBLIB_SUFFIXES:
        model = load_joblib(path) if model is None else model
        if not hasattr(model, "predict_proba"):
            raise CommandError(
                f"{path}: holds a {type(model).__name__}, which has no "
                "predict_proba; every stage must give class probabilities"
                + (
                    " (for a cascade of regressors that do not say they are "
                    "regressors, pass --task regression)."
                    if hasattr(model, "predict")
                    else "."
                )
            )
        if not hasattr(model, "classes_"):
            raise CommandError(
                f"{path}: the {type(model).__name__} in it is not fitted; save a "
                "fitted model."
            )
        return model if isinstance(model, FrozenEstimator) else FrozenEstimator(model)
    raise CommandError(
        f"{path}: unknown model format {suffix!r}; use .onnx, .joblib or .pkl."
    )


def _probe_row(X):
    """One row to check an ONNX model's input and output on: the first with
    no missing value (a missing value is the data's fault, said later by the
    stage that refuses it, not the model file's)."""
    values = np.asarray(X)
    if values.dtype.kind == "f" and values.ndim >= 2 and len(values):
        finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if finite.any():
            first = int(np.argmax(finite))
            return X[first : first + 1]
    return X[:1]


def load_regression_stage(path: str, model=None, X=None):
    """A fitted regressor from a joblib/pickle file, frozen.

    ``model`` is the object already loaded from the file, if it was. An ONNX
    file is an :class:`~skadaptive.stages.OnnxRegressor` (one output column),
    checked against the rows ``X`` (its input shape, its output) where given.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator
    from sklearn.utils.validation import check_is_fitted

    file = _existing(path)
    suffix = file.suffix.lower()
    if suffix == ".onnx":
        from ..stages.onnx import OnnxRegressor

        try:
            model = OnnxRegressor(str(file))
            if X is not None:
                model.fit(_probe_row(X), np.zeros(1))
            return FrozenEstimator(model)
        except (ImportError, ValueError, TypeError) as exc:
            text = onnx_error_text(exc, "OnnxRegressor")
            raise CommandError(f"{path}: {text}") from exc
    if suffix not in JOBLIB_SUFFIXES:
        raise CommandError(
            f"{path}: unknown model format {suffix!r}; use .joblib or .pkl for a "
            "regressor."
        )
    model = load_joblib(path) if model is None else model
    name = type(model).__name__
    if tagged_type(model) == "classifier":
        raise CommandError(
            f"{path}: holds a {name}, a classifier; every stage of a regression "
            "cascade must be a regressor."
        )
    if not hasattr(model, "predict"):
        raise CommandError(
            f"{path}: holds a {name}, which has no predict; every stage of a "
            "regression cascade must be a fitted regressor."
        )
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise CommandError(
            f"{path}: the {name} in it is not fitted; save a fitted model."
        ) from exc
    except TypeError:  # not a scikit-learn estimator: its fit cannot be checked
        pass
    return model if isinstance(model, FrozenEstimator) else FrozenEstimator(model)


def check_feature_counts(models: dict, X, data: str) -> None:
    """Refuse, naming the file, a fitted model that takes another number of
    features than the rows of ``data`` have (``models``: objects by path)."""
    width = np.shape(X)[1] if np.ndim(X) == 2 else None
    for path, model in models.items():
        expected = getattr(model, "n_features_in_", None)
        if width is not None and expected is not None and expected != width:
            if data.lower().endswith(".npz"):  # labels are an array of their own
                where = f"the rows of {data} have {width}"
                fix = "give the rows it was trained on (--x-key names the array)"
            else:
                where = (
                    f"the rows of {data} have {width} (after the label column is "
                    "taken out)"
                )
                fix = (
                    "give the data it was trained on, or name the label column "
                    "with --label"
                )
            raise CommandError(
                f"{path}: the {type(model).__name__} in it takes {expected} "
                f"features, but {where}: {fix}."
            )


def _count(n: int, one: str, many: str) -> str:
    """``n`` and the words that agree with it: "1 label is", "2 labels are"."""
    return f"{n} {one if n == 1 else many}"


#: Words other tools write for a missing value; here a cell holding one is
#: text (a class may be called "NA"), and only an empty cell is missing.
_MISSING_WORDS = frozenset({"na", "n/a", "nan", "null", "none", "missing", "?"})


def _is_blank(value) -> bool:
    """An empty cell: blank text, or the NaN it was made into."""
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def refuse_missing_labels(y: np.ndarray, path: str) -> None:
    """Class labels with an empty cell are an error naming the rows (a
    blank label was taken for a class of its own, '')."""
    if y.dtype.kind not in "OUSf":
        return
    blank = np.flatnonzero([_is_blank(v) for v in y])
    if y.dtype.kind in "OUS" and not len(blank):
        # Numbers but for words other tools write for a missing value: the
        # column was read as text for them ("NA" is a class of text labels).
        words = np.array(
            [isinstance(v, str) and v.strip().lower() in _MISSING_WORDS for v in y]
        )
        rest = y[~words]
        # The rest read as numbers, as the loader reads a label column.
        if (
            words.any()
            and len(rest)
            and _numeric_if_possible(rest.astype(str)).dtype.kind in "iuf"
        ):
            first = int(np.flatnonzero(words)[0])
            raise CommandError(
                f"{path}: {_count(int(words.sum()), 'label reads', 'labels read')} "
                f"{str(y[first])!r} (the first in data row {first + 1}) among numbers: "
                "a missing label is an empty cell here, and such a word makes "
                "every label text. Drop those rows or fill in their labels."
            )
    if len(blank):
        raise CommandError(
            f"{path}: {_count(len(blank), 'label is', 'labels are')} missing (empty "
            f"cells, or NaN; the first in data row {blank[0] + 1}); drop those rows "
            "or fill in their labels."
        )


def regression_target(y: np.ndarray, path: str) -> np.ndarray:
    """``y`` as the float target of a regressor; text or non-finite values
    are an error naming the fix."""
    if y.dtype.kind in "OUS":
        # An empty cell is a missing value (as the help says), not text.
        blank = np.array([_is_blank(v) for v in y], bool)
        if blank.any():
            y = np.where(blank, np.nan, y.astype(object))
    try:
        target = y.astype(np.float64)
    except (TypeError, ValueError):
        examples = []
        for value in sorted({str(v) for v in y if not _is_blank(v)}):
            try:
                float(value)
            except ValueError:
                examples.append(str(value))
            if len(examples) == 3:
                break
        if all(text.strip().lower() in _MISSING_WORDS for text in examples):
            raise CommandError(
                f"{path}: the target holds {', '.join(map(repr, examples))}, read "
                "as text: a missing value is an empty cell here. Drop those rows "
                "(or leave their cells empty, to be told which)."
            ) from None
        raise CommandError(
            f"{path}: the target holds text (e.g. {', '.join(map(repr, examples))}) "
            "and a regressor predicts numbers; check that --label (--y-key for "
            ".npz) names the target column, or give classifiers for class labels."
        ) from None
    bad = ~np.isfinite(target)
    if bad.any():
        first = y[bad][0]
        example = "an empty cell" if _is_blank(first) else repr(str(first))
        raise CommandError(
            f"{path}: {_count(int(bad.sum()), 'target value is', 'target values are')} "
            f"missing or not finite numbers (e.g. {example}); drop those rows."
        )
    return target


def onnx_error_text(error, estimator: str) -> str:
    """An ONNX stage's error as the command line says it: where it advises
    the Python parameter ``output=``, how to use it from here."""
    text = str(error)
    if "output=<name>" in text:
        text += (
            f" On the command line: save {estimator}(model, output=<name>, ...) "
            "with joblib and pass that .joblib file instead."
        )
    return text
