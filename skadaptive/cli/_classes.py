"""Which label each output column of a model stands for, and labels it lacks.

A model's probability columns are matched to labels by position. A joblib
model knows its ``classes_``; an ONNX model says it in its metadata, through
a label output, or not at all. The order is never guessed by sorting the
labels: a model trained on ``["zero", "one", "two"]`` has its columns in that
order, which sorted would put "zero" last, and every stage would be scored
wrong without an error.
"""

from __future__ import annotations

import json

import numpy as np

from ._io import CommandError, _short, onnx_error_text

# Keys of an ONNX model's ``metadata_props`` that may hold its column labels:
# a JSON list (``["zero", "one"]``), a JSON object from column index to label
# (``{"0": "zero", "1": "one"}``, as Hugging Face's ``id2label``) or
# comma-separated text (``zero,one``).
METADATA_KEYS = ("classes", "labels", "class_labels", "id2label")
# ONNX-ML classifier nodes name their classes in these attributes, in the order
# of their score columns (models converted by skl2onnx or onnxmltools).
_CLASS_LABEL_ATTRIBUTES = (
    "classlabels_strings",
    "classlabels_int64s",
    "classlabels_ints",
)
# Nodes that pass their first input on unchanged but for its shape.
_SHAPE_ONLY = ("Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten")


def labels_like(values, y: np.ndarray, source: str) -> np.ndarray:
    """``values`` as labels of the type of ``y``, unique; ``source`` names them.

    Numeric data labels need numeric classes to match (``"1"`` and ``1`` are
    one class); text labels are compared as text.
    """
    classes = np.asarray(values)
    if y.dtype.kind in "iuf":
        try:
            classes = classes.astype(np.float64)
        except ValueError as exc:
            raise CommandError(
                f"{source} gives {np.asarray(values).tolist()}, which are not "
                "numbers like the labels."
            ) from exc
        if y.dtype.kind in "iu":
            if not np.array_equal(classes, np.round(classes)):
                raise CommandError(
                    f"{source} gives {np.asarray(values).tolist()}, which are not "
                    "whole numbers like the labels."
                )
            classes = classes.astype(y.dtype)
    else:
        classes = classes.astype(str)
    if len(np.unique(classes)) != len(classes):
        raise CommandError(
            f"{source} gives {np.asarray(values).tolist()}, which repeat a class."
        )
    return classes


def onnx_classes(
    path: str, y: np.ndarray, given: np.ndarray | None = None
) -> tuple[np.ndarray, str | None]:
    """The labels of an ONNX model's output columns, in column order.

    ``given`` (``--classes``) wins when not None; it must have one label per
    column. Otherwise they come from, in turn: the model's metadata
    (:data:`METADATA_KEYS`); the labels behind its label output; for
    whole-number data labels, the column index (column ``k`` is label ``k``,
    the layout of any model trained on class indices). Anything else is an
    error asking for ``--classes``.

    Returns
    -------
    classes : ndarray
        One label per column, of the data labels' type.
    note : str or None
        What the user should know about where the labels came from: set when
        they are the column indices, which the model did not state.
    """
    from ..stages.onnx._io import _pick_output
    from ..stages.onnx._runtime import _import_onnxruntime

    try:
        ort = _import_onnxruntime()
    except ImportError as exc:
        raise CommandError(f"{path}: {exc}") from exc
    options = ort.SessionOptions()
    # Only the outputs and the metadata are read: no need to optimise.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CommandError(f"{path}: cannot read it as an ONNX model: {exc}") from exc
    try:
        scores = _pick_output(session.get_outputs(), None, "OnnxClassifier")
    except ValueError as exc:
        raise CommandError(f"{path}: {onnx_error_text(exc, 'OnnxClassifier')}") from exc
    n_columns = (
        scores.shape[1]
        if len(scores.shape) == 2 and isinstance(scores.shape[1], int)
        else None
    )
    if given is not None:
        return _one_per_column(given, n_columns, y, "--classes"), None
    metadata = session.get_modelmeta().custom_metadata_map
    for key in METADATA_KEYS:
        if key in metadata:
            labels = _parse_metadata_labels(metadata[key], key, path)
            source = f"{path}: its metadata {key!r}"
            return _one_per_column(labels, n_columns, y, source), None
    label_outputs = [
        o.name
        for o in session.get_outputs()
        if o.name != scores.name and o.type in ("tensor(string)", "tensor(int64)")
    ]
    for name in label_outputs:
        labels = _labels_behind_output(path, name)
        if labels is not None:
            source = f"{path}: its label output {name!r}"
            return _one_per_column(labels, n_columns, y, source), None
    if n_columns == 1:
        raise CommandError(
            f"{path}: the model has one output column, as a regressor has, and "
            "a classifier needs one per class: pass --task regression for a "
            "cascade of regressors (or --classes with a single label). A binary "
            "classifier whose one column is its second class's probability or "
            "logit: save OnnxClassifier(model, classes=[first, second], "
            "output_kind='proba' or 'logits') with joblib and pass that file."
        )
    if n_columns is not None and y.dtype.kind in "iu":
        note = (
            f"{path}: the model does not name its classes; its {n_columns} output "
            f"columns are taken as the labels 0..{n_columns - 1} (pass --classes "
            "in the model's column order otherwise)"
        )
        return np.arange(n_columns, dtype=y.dtype), note
    if y.dtype.kind in "iu":
        why = "its output width is not declared, so they cannot be taken as 0, 1, ..."
    else:
        why = "the labels are not whole numbers that could be column indices"
    keys = " or ".join(repr(k) for k in METADATA_KEYS[:2])
    raise CommandError(
        f"{path}: the model does not say which label each output column stands "
        f"for (no {keys} in its metadata, no label output naming them) and {why}; "
        "pass --classes with one label per column, in the model's column order "
        f"(the data's labels are {_short(np.unique(y).tolist())}, in no "
        "particular order)."
    )


def _parse_metadata_labels(text: str, key: str, path: str) -> list:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = [part.strip() for part in text.split(",")]
    if isinstance(value, dict):
        try:
            by_column = {int(column): label for column, label in value.items()}
        except ValueError:
            by_column = {}
        if sorted(by_column) != list(range(len(value))):
            raise CommandError(
                f"{path}: its metadata {key!r} maps {sorted(value)} to labels; the "
                "keys must be the column indices 0, 1, ...; pass --classes."
            )
        value = [by_column[column] for column in range(len(value))]
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(label, list | dict) for label in value)
    ):
        raise CommandError(
            f"{path}: its metadata {key!r} is {text!r}, not a list of labels; "
            "pass --classes."
        )
    return value


def _labels_behind_output(path: str, output: str) -> list | None:
    """The class labels a label output picks from, in score-column order.

    Found when the output comes (through shape-only nodes) from an ONNX-ML
    classifier node, whose ``classlabels_*`` attribute lists them, or from a
    ``Gather`` / ``ArrayFeatureExtractor`` of a constant list of labels. None
    when the graph says nothing that plain, or the onnx package is missing.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    try:
        graph = onnx.load(path).graph
    except Exception:  # (onnxruntime read it: the labels are just not found)
        return None
    producers = {name: node for node in graph.node for name in node.output}
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    node = producers.get(output)
    while node is not None and node.op_type in _SHAPE_ONLY:
        node = producers.get(node.input[0])
    if node is None:
        return None
    for attribute in node.attribute:
        if attribute.name in _CLASS_LABEL_ATTRIBUTES:
            values = onnx.helper.get_attribute_value(attribute)
            return [v.decode() if isinstance(v, bytes) else v for v in values]
    if (
        node.op_type in ("Gather", "ArrayFeatureExtractor")
        and node.input[0] in constants
    ):
        values = constants[node.input[0]].ravel().tolist()
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    return None


def _one_per_column(labels, n_columns, y, source) -> np.ndarray:
    if n_columns is not None and len(labels) != n_columns:
        raise CommandError(
            f"{source} gives {len(labels)} labels for the model's {n_columns} "
            "output columns; pass --classes with one label per column, in the "
            "model's column order."
        )
    return labels_like(labels, y, source)


def labels_as_model_classes(y: np.ndarray, classes: list) -> np.ndarray:
    """File labels as the classes of models fitted on them in another type.

    A file's label column that holds numbers is read as numbers, but the
    models may have been fitted on the same labels as text (``"1"``,
    ``"2"``): a CSV cannot tell the two apart. Where every model's classes
    are text, each number is written as the class of that value (``1`` and
    ``1.0`` are the class ``"1"``), else as text (then unknown to the
    models, which the caller says). Two classes of one value (``"1"`` and
    ``"1.0"``) leave the labels as they are: which was meant cannot be told.
    Likewise the text ``"True"`` and ``"False"`` (in any case) are the
    classes of models fitted on bools. Anything else is returned as it is.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
    classes : list of array-like
        Each model's classes.

    Returns
    -------
    y : ndarray of shape (n_rows,)

    Examples
    --------
    >>> import numpy as np
    >>> labels_as_model_classes(np.array([1, 2, 12]), [np.array(["1", "2.0"])]).tolist()
    ['1', '2.0', '12']
    >>> labels_as_model_classes(np.array([1, 2]), [np.array([1, 2])]).tolist()
    [1, 2]
    >>> labels_as_model_classes(np.array(["True", "False"]), [np.array([False, True])])
    array([ True, False])
    """
    names = [c for model in classes for c in np.asarray(model).tolist()]
    if not names:
        return y
    values, inverse = np.unique(y, return_inverse=True)
    if y.dtype.kind in "US" and all(isinstance(c, bool) for c in names):
        # Any case: pandas writes True, R and Spark TRUE or true.
        truth = {"true": True, "false": False}
        words = [str(v).strip().lower() for v in values.tolist()]
        if set(words) <= set(truth):
            return np.array([truth[w] for w in words])[inverse]
        return y
    if y.dtype.kind not in "iuf" or not all(isinstance(c, str) for c in names):
        return y
    by_value = {}
    for name in set(names):
        try:
            value = float(name)
        except ValueError:
            continue
        if by_value.setdefault(value, name) != name:
            return y
    text = [by_value.get(float(v), str(v)) for v in values.tolist()]
    # Text of its own width (the classes' may be narrower: "12" is not "1").
    kind = object if np.asarray(classes[0]).dtype.kind == "O" else str
    return np.array(text, dtype=kind)[inverse]


def check_labels_known(y: np.ndarray, stages, hints: dict) -> None:
    """Every label of the data must be a class of every model.

    ``hints`` maps a stage name to how its classes could be put right.
    """
    present = np.unique(y)
    for name, stage in stages:
        classes = np.asarray(stage.classes_)
        unknown = np.setdiff1d(present, classes)
        if len(unknown) and len(unknown) == len(present):
            raise CommandError(_labels_encoded_otherwise(present, name, classes, hints))
        if len(unknown):
            raise CommandError(
                f"the data has labels {unknown.tolist()} that model {name!r} does "
                f"not predict (its classes are {classes.tolist()}); drop the rows "
                f"with those labels{hints.get(name, '')}."
                + _positions_hint(present, classes)
            )


def _labels_encoded_otherwise(present, name, classes, hints) -> str:
    """The error for data none of whose labels is a class of the model: the
    labels are written otherwise (dropping the unknown rows would drop all)."""
    positions = _positions_hint(present, classes)
    return (
        f"none of the data's labels ({present.tolist()[:10]}"
        + (" ..." if len(present) > 10 else "")
        + f") is a class of model {name!r} (its classes are {classes.tolist()}):"
        " the data writes its labels otherwise than the data the model was "
        f"fitted on.{positions} Give the labels as the model knows them"
        f"{hints.get(name, '')}."
    )


def _positions_hint(present, classes) -> str:
    """Where the data's labels are all among ``0 .. n_classes - 1``, a hint
    that they may be the positions of the model's classes."""
    if np.issubdtype(present.dtype, np.integer) and set(present.tolist()) <= set(
        range(len(classes))
    ):
        return (
            f" Labels 0 .. {len(classes) - 1} may be the positions of its "
            f"classes: write them as the classes themselves ({classes.tolist()}"
            "), in that order."
        )
    return ""
