"""Oracles for the ONNX tests: onnxruntime tensor by tensor, TFLite Micro operator by operator.

onnxruntime runs the file as it is (graph optimisations off, so QDQ files run their float
operators between Q and DQ and QOperator files their integer kernels); every quantised
tensor the IR keeps is read back (uint8 minus 128, NCHW as NHWC). Each IR operator is then
fed onnxruntime's own int8 inputs, so differences do not accumulate from layer to layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from mnv2gen.frontend.onnx_qdq import convert
from mnv2gen.frontend.tflite import load_tflite
from mnv2gen.frontend.tflite_writer import write_tflite
from mnv2gen.ir import Graph
from mnv2gen.reference import KERNELS, run_all
from mnv2gen.tflm import run_tflm_op_outputs

IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def onnxruntime_int8(path: Path, graph: Graph, onnx_inputs: np.ndarray) -> list[dict]:
    """Return, per ONNX-layout input, {IR tensor: onnxruntime's value in the IR's int8
    domain and shape} for every quantised tensor of the file that the IR keeps."""
    import onnxruntime as ort

    names = convert(path.read_bytes(), str(path), path.parent).names
    m = onnx.load(str(path))
    for name in names:
        info = onnx.ValueInfoProto()
        info.name = name  # untyped: onnxruntime takes the producer's type
        m.graph.output.append(info)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(m.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    results = []
    for x in onnx_inputs:
        values = session.run(list(names), {feed: x[None]})
        tensors = {}
        for ir, v in zip(names.values(), values, strict=True):
            shape = graph.tensor(ir).shape
            v = v.astype(np.int32) - (128 if v.dtype == np.uint8 else 0)
            if v.ndim == 4 and v.transpose(0, 2, 3, 1).shape == tuple(shape):
                v = v.transpose(0, 2, 3, 1)
            tensors[ir] = np.ascontiguousarray(v).reshape(shape)
        results.append(tensors)
    return results


def operator_differences(graph: Graph, theirs: dict) -> dict[int, tuple[np.ndarray, tuple]]:
    """Return {op position: (|ours - onnxruntime|, the operator kinds run)} for every operator
    whose output onnxruntime computed, run by the reference on onnxruntime's inputs. An
    operator whose output onnxruntime has no counterpart of (e.g. AVERAGE_POOL_2D before
    the QUANTIZE that moves it to the file's output scale) runs chained with its reader."""
    diffs, mine, chains = {}, {}, {}
    for i, op in enumerate(graph.ops):
        if not all(n in theirs or n in mine or graph.tensor(n).is_const for n in op.inputs):
            continue
        args = [theirs[n].astype(np.int8) if n in theirs else
                mine[n] if n in mine else graph.tensor(n).data for n in op.inputs]
        ours = KERNELS[op.kind](graph, op, args)
        chain = (*(k for n in op.inputs for k in chains.get(n, ())), op.kind.value)
        if op.outputs[0] in theirs:
            diffs[i] = (np.abs(ours.astype(np.int32) - theirs[op.outputs[0]]), chain)
        else:
            mine[op.outputs[0]], chains[op.outputs[0]] = ours, chain
    return diffs


def tflm_differing_bytes(graph: Graph, inputs: list[list[np.ndarray]]) -> tuple[int, int]:
    """Return (bytes compared, bytes differing) between the reference and TFLite Micro over
    every operator output of the graph's TFLite translation, for each input."""
    model = write_tflite(graph)
    written = load_tflite(model)  # through the file, as TFLite Micro reads it
    compared = differing = 0
    for x in inputs:
        ours = run_all(written, x)
        theirs = run_tflm_op_outputs(model, x)
        for op in written.ops:
            a = ours[op.outputs[0]]
            b = np.ascontiguousarray(theirs[op.source_index]).reshape(a.shape).astype(a.dtype)
            compared += a.nbytes
            differing += int(np.count_nonzero(a.view(np.uint8) != b.view(np.uint8)))
    return compared, differing


def ir_differences(a: Graph, b: Graph) -> list[str]:
    """Return where two graphs differ, operator by operator: kind, quantisation of every
    input and output, constant data (an empty list for the same IR up to tensor names)."""
    if [op.kind for op in a.ops] != [op.kind for op in b.ops]:
        return ["operator kinds"]
    found = []
    for x, y in zip(a.ops, b.ops, strict=True):
        for nx, ny in zip((*x.inputs, *x.outputs), (*y.inputs, *y.outputs), strict=True):
            tx, ty = a.tensor(nx), b.tensor(ny)
            if tx.quant != ty.quant or tx.is_const != ty.is_const or (
                    tx.is_const and not np.array_equal(tx.data, ty.data)):
                found.append(f"{x.describe()} {nx}")
    return found


def requantised_channels(path: Path, graph: Graph) -> dict[int, np.ndarray]:
    """Return {op position: mask of its output channels whose weights the conversion
    re-quantised} (only the layers that have any)."""
    masks = convert(path.read_bytes(), str(path), path.parent).requantised
    return {i: masks[op.inputs[1]] for i, op in enumerate(graph.ops)
            if len(op.inputs) == 3 and op.inputs[1] in masks}
