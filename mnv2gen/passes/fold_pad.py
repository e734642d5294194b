"""Fold PAD into the padding of the convolution that reads it.

PAD -> CONV_2D | DEPTHWISE_CONV_2D becomes the convolution alone with its
explicit padding grown by the PAD amounts. Exact: int8 PAD fills with the zero
point, and the convolutions skip out-of-image taps, which contribute
(zero_point - zero_point) * w = 0 either way. Only spatial padding of a PAD
whose output has exactly one reader and the same quantisation as its input.
"""

from __future__ import annotations

from dataclasses import replace

from mnv2gen.ir import Graph, Op, OpKind, Padding
from mnv2gen.passes.rewire import without_op

_CONVS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)


def _foldable(graph: Graph, pad: Op) -> Op | None:
    out = pad.outputs[0]
    readers = graph.consumers(out)
    if len(readers) != 1 or readers[0].kind not in _CONVS or out in graph.outputs:
        return None
    conv = readers[0]
    (n0, n1), _, _, (c0, c1) = pad.attrs.paddings
    x, y = graph.tensor(pad.inputs[0]), graph.tensor(out)
    if (n0, n1, c0, c1) != (0, 0, 0, 0) or x.quant != y.quant or conv.inputs[0] != out:
        return None
    return conv


def fold_pad(graph: Graph) -> Graph:
    """Return `graph` with every foldable PAD merged into the convolution after it."""
    for pad in [op for op in graph.ops if op.kind is OpKind.PAD]:
        conv = _foldable(graph, pad)
        if conv is None:
            continue
        (_, _), (top, bottom), (left, right), _ = pad.attrs.paddings
        p = conv.attrs.padding
        grown = Padding(p.top + top, p.bottom + bottom, p.left + left, p.right + right)
        merged = Op(conv.kind, conv.name, conv.inputs, conv.outputs,
                    replace(conv.attrs, padding=grown), conv.source_index)
        graph = graph.replace(ops=tuple(merged if o is conv else o for o in graph.ops))
        graph = without_op(graph, pad, pad.inputs[0])
    return graph
