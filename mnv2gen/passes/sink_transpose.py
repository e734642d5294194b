"""Move a TRANSPOSE below the MEAN that reads it, and drop identity transposes.

TRANSPOSE(perm) -> MEAN(axes) equals MEAN(perm[axes]) -> TRANSPOSE(perm'),
bit for bit: each output element sums the same input elements (integer sums
are order-free) and is rounded once the same way. Applied until no TRANSPOSE
feeds a MEAN, so `tinyengine_vww`'s NCHW pooling head becomes NHWC means.
"""

from __future__ import annotations

from mnv2gen.ir import Graph, MeanAttrs, Op, OpKind, Tensor, TransposeAttrs
from mnv2gen.passes.rewire import without_op


def _swap(graph: Graph, tr: Op, mean: Op) -> Graph:
    perm, axes, keep = tr.attrs.perm, mean.attrs.axes, mean.attrs.keep_dims
    src_axes = tuple(sorted(perm[a] for a in axes))
    x = graph.tensor(tr.inputs[0])
    if keep:
        reduced_shape = tuple(1 if i in src_axes else d for i, d in enumerate(x.shape))
        new_perm = perm
    else:
        reduced_shape = tuple(d for i, d in enumerate(x.shape) if i not in src_axes)
        kept_src = sorted(perm[i] for i in range(len(perm)) if i not in axes)
        new_perm = tuple(kept_src.index(perm[i]) for i in range(len(perm)) if i not in axes)
    out = graph.tensor(mean.outputs[0])
    mid = Tensor(f"{out.name}/nhwc", reduced_shape, out.dtype, out.quant)
    new_mean = Op(OpKind.MEAN, mean.name, (x.name,), (mid.name,), MeanAttrs(src_axes, keep),
                  mean.source_index)
    new_tr = Op(OpKind.TRANSPOSE, tr.name, (mid.name,), mean.outputs, TransposeAttrs(new_perm),
                tr.source_index)
    ops = []
    for op in graph.ops:
        if op is tr:
            continue
        ops.extend([new_mean, new_tr] if op is mean else [op])
    tensors = {n: t for n, t in graph.tensors.items() if n != tr.outputs[0]}
    tensors[mid.name] = mid
    return graph.replace(ops=tuple(ops), tensors=tensors)


def sink_transpose(graph: Graph) -> Graph:
    """Return `graph` with transposes moved below means and identity transposes removed."""
    changed = True
    while changed:
        changed = False
        for tr in [op for op in graph.ops if op.kind is OpKind.TRANSPOSE]:
            if tr.attrs.perm == tuple(range(len(tr.attrs.perm))):
                graph = without_op(graph, tr, tr.inputs[0])
                changed = True
                break
            readers = graph.consumers(tr.outputs[0])
            if (len(readers) == 1 and readers[0].kind is OpKind.MEAN
                    and tr.outputs[0] not in graph.outputs):
                graph = _swap(graph, tr, readers[0])
                changed = True
                break
    return graph
