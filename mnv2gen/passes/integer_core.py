"""Cut the float edges off a graph: what runs on the microcontroller is integer only.

A QUANTIZE that reads a float32 graph input and a DEQUANTIZE that writes a float32 graph
output are removed; the int8 tensors between them become the graph's inputs and
outputs, and the caller quantises/dequantises with the scale and zero point the
generated header states. QUANTIZE from uint8 is integer arithmetic and stays.
"""

from __future__ import annotations

from mnv2gen.ir import DType, Graph, OpKind


def integer_core(graph: Graph) -> Graph:
    """Return `graph` without float32 QUANTIZE inputs and DEQUANTIZE outputs."""
    inputs, outputs, dropped = list(graph.inputs), list(graph.outputs), set()
    for op in graph.ops:
        src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if (op.kind is OpKind.QUANTIZE and src.dtype is DType.FLOAT32
                and src.name in inputs and graph.consumers(src.name) == (op,)):
            inputs[inputs.index(src.name)] = dst.name
            dropped.add(op.name)
        elif (op.kind is OpKind.DEQUANTIZE and dst.dtype is DType.FLOAT32
              and dst.name in outputs and len(graph.consumers(src.name)) == 1
              and src.name not in graph.inputs):
            outputs[outputs.index(dst.name)] = src.name
            dropped.add(op.name)
    if not dropped:
        return graph
    ops = tuple(op for op in graph.ops if op.name not in dropped)
    used = set(inputs) | set(outputs) | {n for op in ops for n in (*op.inputs, *op.outputs)}
    tensors = {n: t for n, t in graph.tensors.items() if n in used}
    core = graph.replace(ops=ops, inputs=tuple(inputs), outputs=tuple(outputs), tensors=tensors)
    core.verify()
    return core
