"""Graph-editing helpers shared by the passes."""

from __future__ import annotations

from mnv2gen.ir import Graph, Op


def without_op(graph: Graph, op: Op, replacement_input: str) -> Graph:
    """Return `graph` with `op` removed and readers of its output reading `replacement_input`.

    The removed op's output tensor is dropped; graph outputs are renamed too.
    """
    old = op.outputs[0]
    ops = tuple(
        o if old not in o.inputs else
        Op(o.kind, o.name, tuple(replacement_input if n == old else n for n in o.inputs),
           o.outputs, o.attrs, o.source_index)
        for o in graph.ops if o is not op)
    outputs = tuple(replacement_input if n == old else n for n in graph.outputs)
    tensors = {n: t for n, t in graph.tensors.items() if n != old}
    return graph.replace(ops=ops, outputs=outputs, tensors=tensors)


def drop_unused_constants(graph: Graph) -> Graph:
    """Return `graph` without constant tensors that no operator reads."""
    used = {n for op in graph.ops for n in op.inputs} | set(graph.outputs)
    tensors = {n: t for n, t in graph.tensors.items() if not t.is_const or n in used}
    return graph.replace(tensors=tensors)


def drop_dead_ops(graph: Graph) -> Graph:
    """Return `graph` without operators whose output nothing reads (folded shape plumbing
    leaves them), last first so chains of dead operators go at once."""
    live = set(graph.outputs)
    kept = []
    for op in reversed(graph.ops):
        if any(n in live for n in op.outputs):
            kept.append(op)
            live.update(op.inputs)
    ops = tuple(reversed(kept))
    used = live | set(graph.inputs)
    tensors = {n: t for n, t in graph.tensors.items() if n in used or t.is_const}
    return graph.replace(ops=ops, tensors=tensors)
