"""Find the MobileNet building blocks in a (passed) graph.

An inverted residual block is [1x1 expand CONV_2D [-> activation op]] -> DEPTHWISE_CONV_2D
[-> activation op] [-> squeeze-excite] -> linear 1x1 project CONV_2D [-> ADD with the
block input]. Without the expand conv (expansion factor 1, MobileNetV2's first block)
the depthwise reads the previous layer's output directly. A MobileNetV1 separable pair
is a depthwise followed by an activated 1x1 pointwise conv.

Activation ops are elementwise operators with their own quantisation (MobileNetV3's
HARD_SWISH, a LOGISTIC), where other files fuse a clamp into the convolution.
Squeeze-excite: the depthwise output D has exactly two readers, a global MEAN and a MUL
of D by a channel vector computed from the MEAN's output alone (the excitation path:
1x1 convolutions or fully connected layers and a gate, whatever ops the file has for
them, every tensor of it one value per channel); the MUL's output is what the
projection reads. Every other inner tensor must have exactly one reader, or the block
could not be fused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mnv2gen.ir import Activation, Graph, Op, OpKind

# elementwise operators that may stand between the convolutions of a block
ACTIVATION_OPS = (OpKind.HARD_SWISH, OpKind.LOGISTIC)


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
    expand_activation: str | None = None      # activation op after the expand conv
    depthwise_activation: str | None = None   # activation op after the depthwise
    squeeze_excite: tuple[str, ...] = ()      # MEAN, the excitation path, the MUL


@dataclass(frozen=True)
class SqueezeExcitePath:
    """The operators of one squeeze-excite inside a block."""

    mean: Op
    excite: tuple[Op, ...]   # MEAN output -> channel vector, in execution order
    scale: Op                # MUL(features, vector)

    @property
    def features(self) -> str:
        """Return the tensor the MEAN pools and the MUL scales."""
        return self.mean.inputs[0]

    @property
    def vector(self) -> str:
        """Return the channel vector the MUL scales the features by."""
        a, b = self.scale.inputs
        return b if a == self.features else a

    @property
    def ops(self) -> tuple[Op, ...]:
        """Return MEAN, the excitation ops and the MUL, in execution order."""
        return (self.mean, *self.excite, self.scale)


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


def activation_after(graph: Graph, tensor: str) -> Op | None:
    """Return the activation op that is the only reader of `tensor`, or None."""
    reader = _only_reader(graph, tensor)
    if reader is None or reader.kind not in ACTIVATION_OPS or reader.inputs[0] != tensor:
        return None
    if graph.tensor(reader.outputs[0]).shape != graph.tensor(tensor).shape:
        return None
    return reader


def activation_before(graph: Graph, tensor: str) -> Op | None:
    """Return the activation op writing `tensor` whose input has no other reader."""
    op = graph.producer(tensor)
    if op is None or op.kind not in ACTIVATION_OPS:
        return None
    return op if activation_after(graph, op.inputs[0]) is op else None


def _per_channel(graph: Graph, name: str) -> bool:
    """Return True for a tensor holding one value per channel (all other dims 1)."""
    shape = graph.tensor(name).shape
    return len(shape) >= 1 and math.prod(shape[:-1]) == 1


def squeeze_excite_at(graph: Graph, features: str) -> SqueezeExcitePath | None:
    """Return the squeeze-excite reading `features` ([1, H, W, C]), or None."""
    shape = graph.tensor(features).shape
    readers = graph.consumers(features)
    if len(shape) != 4 or len(readers) != 2 or features in graph.outputs:
        return None
    means = [op for op in readers if op.kind is OpKind.MEAN
             and tuple(sorted(set(op.attrs.axes))) == (1, 2) and _per_channel(graph, op.outputs[0])]
    muls = [op for op in readers if op.kind is OpKind.MUL and op.inputs.count(features) == 1
            and graph.tensor(op.outputs[0]).shape == shape]
    if len(means) != 1 or len(muls) != 1:
        return None
    mean, scale = means[0], muls[0]
    vector = scale.inputs[1] if scale.inputs[0] == features else scale.inputs[0]
    if graph.tensor(vector).shape[-1:] != shape[-1:] or not _per_channel(graph, vector):
        return None
    path, todo = set(), [vector]
    while todo:  # walk back from the vector to the MEAN's output
        name = todo.pop()
        t = graph.tensor(name)
        if name == mean.outputs[0] or t.is_const:
            continue
        op = graph.producer(name)
        if op is None or name in graph.outputs or not _per_channel(graph, name):
            return None
        if op.name not in path:
            path.add(op.name)
            todo.extend(op.inputs)
    excite = tuple(op for op in graph.ops if op.name in path)
    inside = {op.name for op in excite} | {scale.name}
    for op in (mean, *excite):  # every tensor of the path is read inside it only
        out = op.outputs[0]
        if out in graph.outputs or any(r.name not in inside for r in graph.consumers(out)):
            return None
    if not excite or any(len(op.outputs) != 1 for op in excite):
        return None
    return SqueezeExcitePath(mean, excite, scale)


def _activated(graph: Graph, conv: Op) -> bool:
    return conv.attrs.activation is not Activation.NONE or \
        activation_after(graph, conv.outputs[0]) is not None


def _block_at(graph: Graph, dw: Op) -> Block | None:
    dw_act = activation_after(graph, dw.outputs[0])
    features = dw_act.outputs[0] if dw_act else dw.outputs[0]
    se = squeeze_excite_at(graph, features)
    projected = se.scale.outputs[0] if se else features
    project = _only_reader(graph, projected)
    if project is None or not is_pointwise(graph, project) or project.inputs[0] != projected:
        return None
    linear = project.attrs.activation is Activation.NONE and \
        activation_after(graph, project.outputs[0]) is None
    expand_act = activation_before(graph, dw.inputs[0])
    wide = expand_act.inputs[0] if expand_act else dw.inputs[0]
    expand = graph.producer(wide) if linear else None
    if (expand is None or not is_pointwise(graph, expand) or not _activated(graph, expand)
            or _only_reader(graph, dw.inputs[0]) is not dw
            or _only_reader(graph, wide) is not (expand_act or dw)):
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
        stride=dw.attrs.stride_h,
        expand_activation=expand_act.name if expand_act and expand else None,
        depthwise_activation=dw_act.name if dw_act else None,
        squeeze_excite=tuple(op.name for op in se.ops) if se else ())


def find_blocks(graph: Graph) -> tuple[Block, ...]:
    """Return the inverted residual blocks and separable pairs in execution order."""
    found = (_block_at(graph, op) for op in graph.ops if op.kind is OpKind.DEPTHWISE_CONV_2D)
    return tuple(b for b in found if b is not None)
