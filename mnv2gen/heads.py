"""Find what a model does beyond its backbone blocks: squeeze-excite units and output heads.

A squeeze-excite unit is a MUL of a feature map [N, H, W, C] by a per-channel vector
[N, 1, 1, C] computed from the same feature map through a global MEAN (the excitation
path: 1x1 convolutions and a gating activation). An output head is what lies between the
last backbone block and a graph output, classified by its operators: ARG_MAX ->
segmentation, a CONCATENATION of rank-3 box/score tensors -> detection, an output that is
constant -> anchors, otherwise classifier (pooling, fully connected, softmax/sigmoid).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mnv2gen.blocks import find_blocks
from mnv2gen.ir import Graph, OpKind


@dataclass(frozen=True)
class SqueezeExcite:
    """One squeeze-excite unit: the MUL that scales `features` by a channel vector."""

    mul: str
    features: str
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class Head:
    """One graph output and the operators that produce it after the backbone."""

    output: str
    kind: str
    shape: tuple[int, ...]
    op_counts: dict[str, int]


def _ancestors(graph: Graph, name: str, stop: set[str]) -> set[str]:
    """Return the names of the tensors `name` is computed from, not crossing `stop`."""
    seen, todo = set(), [name]
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in stop:
            continue
        producer = graph.producer(t)
        if producer is not None:
            todo.extend(producer.inputs)
    return seen


def find_squeeze_excite(graph: Graph) -> tuple[SqueezeExcite, ...]:
    """Return the squeeze-excite units in execution order."""
    found = []
    for op in graph.ops:
        if op.kind is not OpKind.MUL:
            continue
        shapes = [graph.tensor(n).shape for n in op.inputs]
        if any(len(s) != 4 for s in shapes):
            continue
        big, small = (0, 1) if shapes[1][1:3] == (1, 1) else (1, 0)
        n, h, w, c = shapes[big]
        if shapes[small] != (n, 1, 1, c) or (h, w) == (1, 1):
            continue
        features = op.inputs[big]
        path = _ancestors(graph, op.inputs[small], {features})
        if features in path and any(graph.producer(t) is not None and graph.producer(t).kind
                                    is OpKind.MEAN for t in path):
            found.append(SqueezeExcite(op.name, features, c, h, w))
    return tuple(found)


def find_heads(graph: Graph) -> tuple[Head, ...]:
    """Return one head per graph output, in output order."""
    backbone = {b.output for b in find_blocks(graph)}
    heads = []
    for name in graph.outputs:
        t = graph.tensor(name)
        tensors = _ancestors(graph, name, backbone)
        ops = [op for op in graph.ops if op.outputs[0] in tensors
               and op.outputs[0] not in backbone]
        counts = Counter(op.kind.value for op in ops)
        if t.is_const or not tensors & (set(graph.inputs) | backbone):
            kind = "anchors (constant)"
        elif counts.get("ARG_MAX"):
            kind = "segmentation"
        elif counts.get("CONCATENATION") and len(t.shape) == 3:
            kind = "detection"
        else:
            kind = "classifier"
        heads.append(Head(name, kind, t.shape, dict(counts)))
    return tuple(heads)
