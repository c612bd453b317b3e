"""One ONNX network with several heads, split into one session per exit.

:class:`OnnxMultiExit` turns one ONNX network with several classifier heads into
a :class:`~skadaptive.stages._multi_exit.MultiExitSource`. A single ONNX graph
cannot stop early -- fetching only an early output still runs everything the
graph computes -- so the graph is split into one ``InferenceSession`` per exit:
segment ``k`` computes only what exit ``k`` needs beyond the earlier segments,
and the tensors that later segments read are handed on as the state. With the
CUDA execution provider the handed-on tensors stay on the GPU (onnxruntime IO
binding); only each exit's small score matrix is copied to the host.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._sklearn_private import _num_samples
from ..._typing import ArrayLike
from .._multi_exit import MultiExitSource
from ._graph import _dims, _gather_model, _split_graph
from ._io import (
    _ORT_DTYPES,
    _check_classes,
    _check_options,
    _input_spec,
    _prepare_rows,
    _to_proba,
)
from ._runtime import (
    _CUDA,
    _check_providers,
    _create_session,
    _cuda_device_id,
    _import_onnx,
    _import_onnxruntime,
    _LazyRuntime,
    _read_model,
    _requested_providers,
)

__all__ = ["OnnxMultiExit"]


# ----------------------------------------------------------- OnnxMultiExit
@dataclass
class _OnnxExitState:
    """Rows still running and the tensors later segments read, for those rows.

    A tensor is a numpy array, or an ``onnxruntime.OrtValue`` on the session's
    device when IO binding is used.
    """

    n_rows: int
    tensors: dict = field(default_factory=dict)


@dataclass
class _ExitRuntime:
    ort: Any
    sessions: list
    providers: list[str]
    device: tuple[str, int]
    io_binding: bool
    gathers: dict
    unsplit: Any = None


class OnnxMultiExit(_LazyRuntime, MultiExitSource):
    """Exits of one ONNX network with several classifier heads, run apart.

    The graph is split into one onnxruntime session per exit. Segment ``k``
    holds the nodes exit ``k`` needs that no earlier exit needs; the tensors it
    reads from earlier segments (and the input, where a later part reads it)
    are found from the graph and carried in the state, so a row that exits at
    ``k`` never pays for the later segments and a row that goes on never
    recomputes the earlier ones. Nodes that depend on no input (weights,
    constants) are recomputed in each segment that needs them.

    Parameters
    ----------
    model : str, path-like, bytes or onnx.ModelProto
        The network, one ONNX graph with one input (batch axis first, dynamic)
        and an output per exit.
    exit_outputs : list of str
        The exits' output names, in the order the network computes them.
    classes : array-like of shape (n_classes,)
        Label of each output column, in the model's column order (the same at
        every exit). ``classes_`` is their sorted order.
    output_kind : {"auto", "proba", "logits"}, default="auto"
        What every exit outputs; as in :class:`OnnxClassifier`.
    input_shape : tuple of int, default=None
        Shape of one row without the batch axis, where the model does not
        declare it; as in :class:`OnnxClassifier`.
    providers : "auto" or list, default="auto"
        onnxruntime execution providers; as in :class:`OnnxClassifier`.
    io_binding : "auto" or bool, default="auto"
        Run the segments with onnxruntime IO binding, keeping the handed-on
        tensors as ``OrtValue`` s on the session's device; rows are selected
        on the device too (a one-node ``Gather`` session). Only each exit's
        scores are copied to the host. ``"auto"``: on when the sessions got
        the CUDA provider. ``True`` also works on the CPU (the same code path,
        for testing); ``False`` hands numpy arrays on (on a GPU this copies
        every handed-on tensor to the host and back).
    intra_op_num_threads, inter_op_num_threads : int, default=None
        onnxruntime thread pool sizes of each session.

    Attributes
    ----------
    n_stages : int
    classes_ : ndarray of shape (n_classes,)
    exit_outputs : tuple of str
    input_name : str
        The graph input fed at the first exit.
    segment_inputs : list of tuple of str
        Tensors each segment reads: the graph input or earlier segments' ones.
    segment_outputs : list of tuple of str
        What each segment returns: its exit's scores, then the tensors it
        hands on to later segments.
    segment_macs : ndarray of shape (n_stages,) or None
        Multiply-accumulates per row of each segment's ``Conv``, ``Gemm`` and
        ``MatMul`` nodes (from the static shapes onnx shape inference finds;
        other operators count 0). ``None`` when a shape needed is unknown.
    providers_ : list of str
        The execution providers the sessions got.

    Notes
    -----
    Only the CPU provider is tested here; the CUDA path is the same code with
    the device set to ``"cuda"``. Each run with IO binding synchronises the
    device at its end (onnxruntime's default), so handed-on tensors are ready
    for the next segment. The sessions are not pickled; they are created again
    on first use after unpickling. ``run_stage`` and ``keep_rows`` may be
    called from several threads at once.

    Examples
    --------
    A two-exit network: a hidden layer with a head, then a second layer with
    another head.

    >>> import pytest; onnx = pytest.importorskip("onnx")
    >>> _ = pytest.importorskip("onnxruntime")
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> from skadaptive.stages import OnnxMultiExit
    >>> rng = np.random.RandomState(0)
    >>> weights = {name: rng.normal(size=shape).astype(np.float32) for name, shape
    ...            in [("W1", (4, 8)), ("H1", (8, 3)), ("W2", (8, 8)), ("H2", (8, 3))]}
    >>> nodes = [
    ...     helper.make_node("MatMul", ["x", "W1"], ["a1"]),
    ...     helper.make_node("Relu", ["a1"], ["h1"]),
    ...     helper.make_node("MatMul", ["h1", "H1"], ["exit1"]),
    ...     helper.make_node("MatMul", ["h1", "W2"], ["a2"]),
    ...     helper.make_node("Relu", ["a2"], ["h2"]),
    ...     helper.make_node("MatMul", ["h2", "H2"], ["exit2"]),
    ... ]
    >>> graph = helper.make_graph(
    ...     nodes, "two_exits",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
    ...     [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3])
    ...      for name in ["exit1", "exit2"]],
    ...     [numpy_helper.from_array(w, name) for name, w in weights.items()],
    ... )
    >>> model = helper.make_model(
    ...     graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    ... )
    >>> source = OnnxMultiExit(
    ...     model, exit_outputs=["exit1", "exit2"], classes=["a", "b", "c"]
    ... )
    >>> source.segment_inputs, source.segment_outputs
    ([('x',), ('h1',)], [('exit1', 'h1'), ('exit2',)])
    >>> source.default_costs()
    array([56., 88.])
    >>> X = rng.normal(size=(5, 4))
    >>> proba1, state = source.run_stage(0, X, None)
    >>> goes_on = proba1.max(axis=1) < 0.9
    >>> state = source.keep_rows(state, goes_on)
    >>> proba2, _ = source.run_stage(1, X[goes_on], state)
    >>> unsplit = source.run_unsplit(X)
    >>> bool(np.allclose(proba2, unsplit[1][goes_on], atol=1e-6))
    True
    """

    @property
    def rows_in_state(self) -> bool:
        """Whether later stages read the state only (the engine then passes
        them no rows): true unless a subclass overrides ``run_stage``."""
        return type(self).run_stage is OnnxMultiExit.run_stage

    def __init__(
        self,
        model,
        *,
        exit_outputs: Sequence[str],
        classes,
        output_kind: str = "auto",
        input_shape: tuple[int, ...] | None = None,
        providers="auto",
        io_binding: bool | str = "auto",
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
    ):
        onnx = _import_onnx()
        ort = _import_onnxruntime()
        owner = type(self).__name__
        _check_options(output_kind, None, intra_op_num_threads, inter_op_num_threads)
        if not (io_binding == "auto" or isinstance(io_binding, bool)):
            raise ValueError(
                f"io_binding must be 'auto', True or False; got {io_binding!r}."
            )
        _requested_providers(ort, providers)  # checks the format only
        if isinstance(exit_outputs, str) or not all(
            isinstance(name, str) for name in exit_outputs
        ):
            raise ValueError(
                f"exit_outputs must be a list of output names; got {exit_outputs!r}."
            )
        exit_outputs = tuple(exit_outputs)
        if len(exit_outputs) == 0 or len(set(exit_outputs)) != len(exit_outputs):
            raise ValueError(
                "exit_outputs must name at least one output, each once; got "
                f"{list(exit_outputs)}."
            )
        self.classes_, self._order = _check_classes(classes)
        data, description = _read_model(model)
        try:
            proto = onnx.load_from_string(data)
        except Exception as exc:
            raise ValueError(f"{description} is not an ONNX model: {exc}") from exc
        graph_input, segments, hand_on_types = _split_graph(
            onnx, proto, exit_outputs, len(self.classes_), description
        )
        tensor_type = graph_input.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).type
        if dtype not in _ORT_DTYPES.values():
            raise ValueError(
                f"model input {graph_input.name!r} has type {np.dtype(dtype)}; "
                f"{owner} feeds float32, float64, float16, int32 or int64 tensors."
            )
        dims = _dims(graph_input) or ()
        self._input = _input_spec(graph_input.name, dims, dtype, input_shape, owner)
        if self._input.fixed_batch is not None:
            raise ValueError(
                f"model input {graph_input.name!r} has a fixed batch size "
                f"({self._input.fixed_batch}); {owner} passes on only the rows that "
                "continue, so it needs a dynamic batch axis (e.g. torch.onnx.export "
                "with dynamic_axes={'input': {0: 'batch'}, ...})."
            )
        self.exit_outputs = exit_outputs
        self.output_kind = output_kind
        self.input_shape = input_shape
        self.providers = providers
        self.io_binding = io_binding
        self.intra_op_num_threads = intra_op_num_threads
        self.inter_op_num_threads = inter_op_num_threads
        self._description = description
        self._model_data = data
        self._segments = segments
        self._gather_models = {t: _gather_model(onnx, t) for t in hand_on_types}
        self._lock = threading.Lock()
        self._runtime = None
        self._unsplit_lock = threading.Lock()

    # ------------------------------------------------------------ describe
    @property
    def n_stages(self) -> int:
        """Number of exits (segments)."""
        return len(self._segments)

    @property
    def input_name(self) -> str:
        """The graph input fed at the first exit."""
        return self._input.name

    @property
    def segment_inputs(self) -> list[tuple[str, ...]]:
        """Tensors each segment reads: the graph input or earlier segments' ones."""
        return [s.inputs for s in self._segments]

    @property
    def segment_outputs(self) -> list[tuple[str, ...]]:
        """What each segment returns: its exit's scores, then what it hands on."""
        return [s.outputs for s in self._segments]

    @property
    def segment_macs(self) -> np.ndarray | None:
        """Multiply-accumulates per row of each segment, None if unknown."""
        macs = [s.macs for s in self._segments]
        if any(m is None for m in macs):
            return None
        return np.asarray(macs, dtype=np.int64)

    @property
    def segment_models(self) -> list[bytes]:
        """The serialised ONNX model of each segment."""
        return [s.model for s in self._segments]

    @property
    def providers_(self) -> list[str]:
        """The execution providers the sessions got."""
        return list(self._get_runtime().providers)

    def default_costs(self) -> np.ndarray:
        """Incremental cost of each exit: its segment's multiply-accumulates.

        The multiply-accumulates per row of the segment's ``Conv``, ``Gemm``
        and ``MatMul`` nodes, from static shapes (``segment_macs``). Where a
        shape is unknown, or no segment has such nodes, there is no count to
        trust and None is returned: :class:`~skadaptive.EarlyExitClassifier`
        then measures each segment's wall time instead.

        Returns
        -------
        costs : ndarray of shape (n_stages,) or None
        """
        macs = self.segment_macs
        if macs is None or macs.sum() == 0:
            return None
        return macs.astype(np.float64)

    @property
    def cost_unit(self) -> str | None:
        """The unit of :meth:`default_costs`, or None when there is none."""
        return None if self.default_costs() is None else "multiply-accumulates"

    # ------------------------------------------------------------- runtime
    def _build_runtime(self) -> _ExitRuntime:
        ort = _import_onnxruntime()
        requested, explicit = _requested_providers(ort, self.providers)
        sessions = []
        for k, segment in enumerate(self._segments):
            session = _create_session(
                ort,
                segment.model,
                f"segment {k} of {self._description}",
                requested,
                self.intra_op_num_threads,
                self.inter_op_num_threads,
            )
            if k == 0:
                _check_providers(ort, requested, explicit, session, type(self).__name__)
            sessions.append(session)
        providers = list(sessions[0].get_providers())
        on_cuda = _CUDA in providers
        device = ("cuda", _cuda_device_id(requested)) if on_cuda else ("cpu", 0)
        io_binding = on_cuda if self.io_binding == "auto" else bool(self.io_binding)
        gathers = {}
        if io_binding:
            gathers = {
                elem_type: _create_session(
                    ort, model, "the row-selection model", requested, 1, 1
                )
                for elem_type, model in self._gather_models.items()
            }
        return _ExitRuntime(ort, sessions, providers, device, io_binding, gathers)

    # --------------------------------------------------------- MultiExit
    def run_stage(
        self, stage: int, X_rows: ArrayLike | None, state: _OnnxExitState | None
    ) -> tuple[np.ndarray, _OnnxExitState]:
        """Run exit ``stage``'s segment on the rows still running.

        At ``stage == 0`` ``X_rows`` is validated, cast to the input's type and
        reshaped to its row shape (as in :class:`OnnxClassifier`); later
        stages read the state, so ``X_rows`` may be None there (as the engine
        passes it) or must have as many rows.

        Parameters
        ----------
        stage : int
        X_rows : array-like of shape (n_rows, n_features) or ``(n_rows, *row_shape)``
        state : _OnnxExitState or None
            ``None`` at stage 0, else the previous stage's state, restricted
            with :meth:`keep_rows` to these rows.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes)
            float64, columns in ``classes_`` order.
        state : _OnnxExitState
        """
        if not 0 <= stage < self.n_stages:
            raise IndexError(f"stage {stage} out of range [0, {self.n_stages}).")
        runtime = self._get_runtime()
        if stage == 0:
            rows = _prepare_rows(X_rows, self._input, estimator=self)
            n_rows, tensors = rows.shape[0], {self._input.name: rows}
        else:
            if state is None:
                raise ValueError(
                    f"Stage {stage} continues from stage {stage - 1}'s state; got None."
                )
            n_rows, tensors = state.n_rows, state.tensors
            if X_rows is not None and _num_samples(X_rows) != n_rows:
                raise ValueError(
                    f"X_rows has {_num_samples(X_rows)} rows but the state has "
                    f"{n_rows}: pass the state of the same rows (see keep_rows)."
                )
        if n_rows == 0:
            return np.empty((0, len(self.classes_))), _OnnxExitState(0)
        segment = self._segments[stage]
        feeds = {name: tensors[name] for name in segment.inputs}
        if runtime.io_binding:
            raw, handed_on = self._run_bound(runtime, stage, feeds)
        else:
            values = runtime.sessions[stage].run(list(segment.outputs), feeds)
            raw, handed_on = values[0], dict(zip(segment.outputs[1:], values[1:]))
        proba = _to_proba(
            raw, self.output_kind, self._order, len(self.classes_), n_rows, segment.exit
        )
        carried = {name: t for name, t in tensors.items() if name in segment.carry}
        for name, tensor in handed_on.items():
            shape = tensor.shape() if callable(tensor.shape) else tensor.shape
            rows_here = shape[0] if len(shape) else "no"  # a scalar has no rows
            if rows_here != n_rows:
                raise ValueError(
                    f"tensor {name!r}, handed from segment {stage} to a later one, "
                    f"has {rows_here} rows for {n_rows} input rows: OnnxMultiExit "
                    "can only hand on tensors whose first axis is the batch."
                )
            carried[name] = tensor
        if segment.exit in segment.carry:
            carried[segment.exit] = raw
        return proba, _OnnxExitState(n_rows, carried)

    def _run_bound(self, runtime: _ExitRuntime, stage: int, feeds: dict):
        """Run a segment with IO binding: hand-on tensors stay on the device."""
        segment = self._segments[stage]
        session = runtime.sessions[stage]
        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, runtime.ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_output(segment.exit, "cpu")
        for name in segment.outputs[1:]:
            binding.bind_output(name, *runtime.device)
        session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return values[0].numpy(), dict(zip(segment.outputs[1:], values[1:]))

    def keep_rows(
        self, state: _OnnxExitState | None, mask: ArrayLike
    ) -> _OnnxExitState | None:
        """The state of the rows where ``mask`` is true, in order.

        Numpy tensors are indexed on the host; ``OrtValue`` s are gathered on
        their device by a one-node ``Gather`` session.

        Parameters
        ----------
        state : _OnnxExitState or None
        mask : array-like of bool, shape (state.n_rows,)

        Returns
        -------
        state : _OnnxExitState or None
        """
        if state is None:
            return None
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (state.n_rows,):
            raise ValueError(
                f"mask has shape {mask.shape}; the state has {state.n_rows} rows."
            )
        rows = np.flatnonzero(mask)
        if len(rows) == state.n_rows:
            return state
        if len(rows) == 0:
            return _OnnxExitState(0)
        runtime = self._get_runtime()
        tensors = {
            name: self._gather(runtime, tensor, rows)
            for name, tensor in state.tensors.items()
        }
        return _OnnxExitState(len(rows), tensors)

    def _gather(self, runtime: _ExitRuntime, tensor, rows: np.ndarray):
        if not isinstance(tensor, runtime.ort.OrtValue):
            return tensor[rows]
        session = runtime.gathers[tensor.element_type()]
        binding = session.io_binding()
        binding.bind_ortvalue_input("data", tensor)
        binding.bind_cpu_input("rows", rows.astype(np.int64))
        binding.bind_output("selected", *runtime.device)
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def run_unsplit(self, X: ArrayLike, *, raw: bool = False) -> list[np.ndarray]:
        """Every exit's output for every row, from the original unsplit graph.

        One session of the whole network; what routing would give with no row
        leaving early. For checks and for comparison.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features) or ``(n_rows, *row_shape)``
        raw : bool, default=False
            Return the outputs as the model gives them (scores, columns in the
            model's order) instead of probabilities in ``classes_`` order.

        Returns
        -------
        outputs : list of ndarray of shape (n_rows, n_classes)
            One per exit, in the order of ``exit_outputs``.
        """
        runtime = self._get_runtime()
        with self._unsplit_lock:
            if runtime.unsplit is None:
                requested, _ = _requested_providers(runtime.ort, self.providers)
                runtime.unsplit = _create_session(
                    runtime.ort,
                    self._model_data,
                    self._description,
                    requested,
                    self.intra_op_num_threads,
                    self.inter_op_num_threads,
                )
            session = runtime.unsplit
        rows = _prepare_rows(X, self._input, estimator=self)
        values = session.run(list(self.exit_outputs), {self._input.name: rows})
        if raw:
            return values
        return [
            _to_proba(
                v, self.output_kind, self._order, len(self.classes_), len(rows), name
            )
            for v, name in zip(values, self.exit_outputs)
        ]

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("_lock", "_unsplit_lock", "_runtime"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._unsplit_lock = threading.Lock()
        self._runtime = None
