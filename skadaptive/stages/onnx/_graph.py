"""Splitting a multi-exit ONNX graph into segments; multiply-accumulate counts."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from ._io import _columns_message

# Operators whose output is not a function of their inputs: never treated as
# constants that may be recomputed in several segments.
_RANDOM_OPS = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


# ------------------------------------------------------------ graph split
def _subgraph_free_names(graph) -> set[str]:
    """Names a subgraph (of ``If``, ``Loop``, ``Scan``) reads from outside."""
    defined = {i.name for i in graph.input}
    defined.update(t.name for t in graph.initializer)
    defined.update(t.values.name for t in graph.sparse_initializer)
    free: set[str] = set()
    for node in graph.node:
        free.update(name for name in _node_inputs(node) if name not in defined)
        defined.update(node.output)
    free.update(o.name for o in graph.output if o.name not in defined)
    return free


def _node_inputs(node) -> list[str]:
    """The tensors a node reads, including those its subgraphs read."""
    names = [name for name in node.input if name]
    for attribute in node.attribute:
        subgraphs = ([attribute.g] if attribute.HasField("g") else []) + list(
            attribute.graphs
        )
        for subgraph in subgraphs:
            names.extend(sorted(_subgraph_free_names(subgraph)))
    return names


def _has_subgraph(node) -> bool:
    return any(a.HasField("g") or len(a.graphs) for a in node.attribute)


def _dims(value_info) -> tuple | None:
    """Dimensions of a tensor value info (None for unknown ones), or None."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(
        d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
    )


def _node_macs(node, shapes: dict) -> int | None:
    """Multiply-accumulates per row of a Conv, Gemm or MatMul node.

    ``None`` when a shape it needs is unknown; 0 for other operators.
    """

    def known(name):
        dims = shapes.get(name)
        return dims if dims is not None and all(d is not None for d in dims) else None

    def known_after_batch(name):
        dims = shapes.get(name)
        if dims is None or len(dims) < 1 or any(d is None for d in dims[1:]):
            return None
        return dims[1:]

    if node.op_type == "Conv":
        weight, out = known(node.input[1]), known_after_batch(node.output[0])
        if weight is None or out is None:
            return None
        return int(prod(out) * prod(weight[1:]))
    if node.op_type == "Gemm":
        weight = known(node.input[1])
        return None if weight is None else int(prod(weight))
    if node.op_type == "MatMul":
        left, out = shapes.get(node.input[0]), known_after_batch(node.output[0])
        if left is None or len(left) < 2 or left[-1] is None or out is None:
            return None
        return int(prod(out) * left[-1])
    return 0


@dataclass
class _Segment:
    """One part of the split graph: what it reads, returns and hands on."""

    model: bytes
    exit: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # the exit first, then the tensors it hands on
    carry: frozenset[str]  # tensors later segments read, kept in the state
    n_nodes: int
    macs: int | None


def _split_graph(onnx, proto, exit_outputs, n_classes: int, description: str):
    """Split ``proto`` into one model per exit; see :class:`OnnxMultiExit`."""
    graph = proto.graph
    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError(
                f"{description} keeps its weights in external data files; "
                "OnnxMultiExit needs a self-contained model (under 2 GB)."
            )
    initializers = {t.name for t in graph.initializer}
    initializers.update(t.values.name for t in graph.sparse_initializer)
    graph_inputs = [i for i in graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        raise ValueError(
            f"{description} has {len(graph_inputs)} inputs "
            f"{[i.name for i in graph_inputs]}; OnnxMultiExit feeds one input tensor."
        )
    graph_input = graph_inputs[0].name
    nodes = list(graph.node)
    node_inputs = [_node_inputs(node) for node in nodes]
    producer = {out: k for k, node in enumerate(nodes) for out in node.output if out}

    # Tensors that do not depend on the input (weights, Constant nodes and what
    # is computed from them alone) are recomputed in each segment that needs
    # them rather than handed on: they have no batch axis to select rows from.
    constant = set(initializers)
    is_constant = []
    for node, names in zip(nodes, node_inputs):
        flag = (
            node.op_type not in _RANDOM_OPS
            and node.domain in ("", "ai.onnx")
            and not _has_subgraph(node)
            and all(name in constant for name in names)
        )
        is_constant.append(flag)
        if flag:
            constant.update(out for out in node.output if out)

    graph_outputs = [o.name for o in graph.output]
    for name in exit_outputs:
        if name not in producer or is_constant[producer[name]]:
            raise ValueError(
                f"exit output {name!r} is not computed from the input by "
                f"{description}; its outputs are {graph_outputs}."
            )

    def ancestors(names, through_constants_only=False) -> set[int]:
        found: set[int] = set()
        stack = list(names)
        while stack:
            k = producer.get(stack.pop())
            if k is None or k in found:
                continue
            if through_constants_only and not is_constant[k]:
                continue
            found.add(k)
            stack.extend(node_inputs[k])
        return found

    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    except Exception:  # the split still works where the model declares types
        inferred = proto
    value_infos = {}
    for value_info in [
        *inferred.graph.value_info,
        *inferred.graph.input,
        *inferred.graph.output,
    ]:
        value_infos[value_info.name] = value_info
    shapes = {name: _dims(vi) for name, vi in value_infos.items()}
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})

    def value_info(name, k):
        info = value_infos.get(name)
        if info is None or not info.type.tensor_type.elem_type:
            raise ValueError(
                f"ONNX shape inference could not tell the type of tensor {name!r}, "
                f"which segment {k} of {description} reads or returns; give the "
                "model value_info for it (e.g. run onnx.shape_inference on it)."
            )
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(info)
        return copy

    computed: set[int] = set()
    plans = []
    for k, name in enumerate(exit_outputs):
        own = {i for i in ancestors([name]) if not is_constant[i] and i not in computed}
        if not own:
            raise ValueError(
                f"exit {name!r} needs nothing beyond what the exits before it "
                f"({list(exit_outputs[:k])}) compute: list exit_outputs in the "
                "order the network computes them."
            )
        computed |= own
        needed = {t for i in own for t in node_inputs[i]}
        members = sorted(own | ancestors(needed, through_constants_only=True))
        produced = {out for i in members for out in nodes[i].output if out}
        reads = []
        for i in members:
            for t in node_inputs[i]:
                if t not in produced and t not in initializers and t not in reads:
                    reads.append(t)
        plans.append((name, members, produced, reads))

    segments = []
    for k, (name, members, _produced, reads) in enumerate(plans):
        carry = frozenset(t for plan in plans[k + 1 :] for t in plan[3])
        hand_on = [
            out
            for i in members
            for out in nodes[i].output
            if out and out in carry and out != name
        ]
        outputs = [name, *hand_on]
        for t in reads:
            assert t == graph_input or any(t in p[2] for p in plans[:k]), t
        used = {t for i in members for t in node_inputs[i]}
        segment_graph = onnx.helper.make_graph(
            [nodes[i] for i in members],
            f"{graph.name or 'graph'}_exit{k}",
            [value_info(t, k) for t in reads],
            [value_info(t, k) for t in outputs],
            initializer=[t for t in graph.initializer if t.name in used],
            sparse_initializer=[
                t for t in graph.sparse_initializer if t.values.name in used
            ],
        )
        segment = onnx.ModelProto(
            ir_version=proto.ir_version,
            producer_name="skadaptive",
            graph=segment_graph,
        )
        segment.opset_import.extend(proto.opset_import)
        segment.functions.extend(proto.functions)
        macs = [_node_macs(nodes[i], shapes) for i in members]
        segments.append(
            _Segment(
                model=segment.SerializeToString(),
                exit=name,
                inputs=tuple(reads),
                outputs=tuple(outputs),
                carry=carry,
                n_nodes=len(members),
                macs=None if any(m is None for m in macs) else int(sum(macs)),
            )
        )
        dims = shapes.get(name)
        if dims is not None and len(dims) == 2 and dims[1] not in (None, n_classes):
            raise ValueError(_columns_message(name, dims[1], n_classes))
    # What is handed on must have one row per input row (the rows that go on
    # are selected from it). The input's batch axis is dynamic, so a tensor
    # whose first axis shape inference fixes to a number, or a scalar, has
    # none: typically one computed from the input's shape (PyTorch's
    # x.shape[0] read once before the first exit: a Shape, Gather, Concat of
    # it). Where inference cannot tell, the rows are checked at prediction.
    for k, segment in enumerate(segments):
        for t in segment.outputs[1:]:
            dims = shapes.get(t)
            if dims is not None and (len(dims) == 0 or dims[0] is not None):
                what = "a scalar" if len(dims) == 0 else f"of shape {list(dims)}"
                raise ValueError(
                    f"tensor {t!r}, which segment {k} of {description} hands on "
                    f"to a later exit, is {what}, with no row per input row "
                    "(typically a value computed from the input's shape: Shape, "
                    "Size); OnnxMultiExit passes on only the rows that continue, "
                    "so it can hand on only tensors whose first axis is the "
                    "batch. Export the network so that each part after an exit "
                    "takes the batch size from its own input (e.g. x.flatten(1) "
                    "or x.reshape(x.shape[0], -1) there, instead of a batch size "
                    "read once before the first exit)."
                )
    hand_on_types = {
        value_infos[t].type.tensor_type.elem_type
        for s in segments
        for t in s.outputs[1:]
    }
    return graph_inputs[0], segments, hand_on_types


def _gather_model(onnx, elem_type: int) -> bytes:
    """A model selecting rows (``Gather`` on axis 0) of a tensor of one type."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Gather", ["data", "rows"], ["selected"], axis=0)],
        "skadaptive_keep_rows",
        [
            helper.make_tensor_value_info("data", elem_type, None),
            helper.make_tensor_value_info("rows", onnx.TensorProto.INT64, ["k"]),
        ],
        [helper.make_tensor_value_info("selected", elem_type, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # the IR version of opset 13, read by any onnxruntime
    return model.SerializeToString()
