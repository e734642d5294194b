"""Find the MobileNet building blocks in a (passed) graph.

An inverted residual block is [1x1 expand CONV_2D] -> DEPTHWISE_CONV_2D ->
linear 1x1 project CONV_2D [-> ADD with the block input]. Without the expand
conv (expansion factor 1, MobileNetV2's first block) the depthwise reads the
previous layer's output directly. A MobileNetV1 separable pair is a depthwise
followed by an activated 1x1 pointwise conv. Every inner tensor must have
exactly one reader, or the block could not be fused.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv2gen.ir import Activation, Graph, Op, OpKind


@dataclass(frozen=True)
class Block:
    """One fusable block: op names, the thin input/output tensors, shape facts."""

    kind: str  # "inverted_residual" or "separable"
    input: str
    output: str
    expand: str | None
    depthwise: str
    project: str
    add: str | None
    expansion: float
    kernel: int
    stride: int


def is_pointwise(graph: Graph, op: Op) -> bool:
    """Return True for a 1x1, stride-1, unpadded CONV_2D."""
    if op.kind is not OpKind.CONV_2D:
        return False
    _, kh, kw, _ = graph.tensor(op.inputs[1]).shape
    a = op.attrs
    return (kh, kw, a.stride_h, a.stride_w) == (1, 1, 1, 1) and a.padding == type(a.padding)()


def _only_reader(graph: Graph, tensor: str) -> Op | None:
    readers = graph.consumers(tensor)
    if len(readers) != 1 or tensor in graph.outputs:
        return None
    return readers[0]


def _block_at(graph: Graph, dw: Op) -> Block | None:
    project = _only_reader(graph, dw.outputs[0])
    if project is None or not is_pointwise(graph, project) or project.inputs[0] != dw.outputs[0]:
        return None
    linear = project.attrs.activation is Activation.NONE
    expand = graph.producer(dw.inputs[0]) if linear else None
    if (expand is None or not is_pointwise(graph, expand)
            or expand.attrs.activation is Activation.NONE
            or _only_reader(graph, dw.inputs[0]) is not dw):
        expand = None
    block_in = expand.inputs[0] if expand else dw.inputs[0]
    output, add = project.outputs[0], None
    reader = _only_reader(graph, output)
    if linear and reader is not None and reader.kind is OpKind.ADD and block_in in reader.inputs:
        add, output = reader, reader.outputs[0]
    in_c = graph.tensor(block_in).shape[-1]
    _, kh, _, dw_c = graph.tensor(dw.inputs[1]).shape
    return Block(
        kind="inverted_residual" if linear else "separable",
        input=block_in, output=output,
        expand=expand.name if expand else None, depthwise=dw.name, project=project.name,
        add=add.name if add else None, expansion=dw_c / in_c, kernel=kh,
        stride=dw.attrs.stride_h)


def find_blocks(graph: Graph) -> tuple[Block, ...]:
    """Return the inverted residual blocks and separable pairs in execution order."""
    found = (_block_at(graph, op) for op in graph.ops if op.kind is OpKind.DEPTHWISE_CONV_2D)
    return tuple(b for b in found if b is not None)
