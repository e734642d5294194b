"""NumPy executor of an IR Graph with TFLite Micro reference-kernel integer semantics.

`run` returns the graph outputs, `run_all` every activation tensor; both are bit-exact
with the tflite-micro interpreter (reference kernels, default double rounding; see
`mnv2gen.quant`). Kernels are looked up in the single table `KERNELS`: the convolution,
pooling and softmax family lives in `mnv2gen.reference_ops`, the elementwise and
activation kernels in `.elementwise`, resize/pool/concat/argmax in `.spatial`, shape
plumbing in `.shape_ops`, and the data-movement and edge kernels here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mnv2gen import quant, reference_ops
from mnv2gen.errors import IRError, MnvError, UnsupportedError, file_label, quoted
from mnv2gen.ir import DType, Graph, Op, OpKind
from mnv2gen.reference import elementwise, shape_ops, spatial

Kernel = Callable[[Graph, Op, list], np.ndarray]


def _reshape(graph: Graph, op: Op, args) -> np.ndarray:
    """Return a view of the input with the output tensor's shape."""
    return args[0].reshape(graph.tensor(op.outputs[0]).shape)


def _transpose(graph: Graph, op: Op, args) -> np.ndarray:
    """Return the input with its axes permuted by `perm` (output dim i = input dim perm[i])."""
    return np.ascontiguousarray(np.transpose(args[0], op.attrs.perm))


def _pad(graph: Graph, op: Op, args) -> np.ndarray:
    """Return the input padded with the output zero point (0 for unquantised tensors)."""
    out = graph.tensor(op.outputs[0])
    value = out.zero_point if out.quant is not None else 0
    return np.pad(args[0], op.attrs.paddings, constant_values=value)


def _clip_to(values: np.ndarray, dtype: DType) -> np.ndarray:
    """Return int64 `values` saturated to `dtype`'s range and cast to it."""
    info = np.iinfo(dtype.np)
    return np.clip(values, info.min, info.max).astype(dtype.np)


def _quantize(graph: Graph, op: Op, args) -> np.ndarray:
    """Return QUANTIZE: float32 -> int as AffineQuantize, int -> int as Requantize."""
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    data = args[0]
    if out.quant is None or out.quant.per_channel:
        raise UnsupportedError(f"{op.describe()}: output {quoted(out.name)} must be per-tensor "
                               "quantised")
    if x.dtype is DType.FLOAT32:
        info = np.iinfo(out.dtype.np)
        return quant.affine_quantize(data, out.scale, out.zero_point, info.min, info.max
                                     ).astype(out.dtype.np)
    multiplier, shift = quant.requantize_multiplier(x.scale, out.scale)
    # Requantize's uint8 <-> int8 "xor 0x80" shortcut gives the same bytes as this path.
    scaled = quant.multiply_by_quantized_multiplier(data.astype(np.int64) - x.zero_point,
                                                    multiplier, shift)
    return _clip_to(scaled + out.zero_point, out.dtype)


def _dequantize(graph: Graph, op: Op, args) -> np.ndarray:
    """Return DEQUANTIZE: float32(double(scale) * (q - zero_point))."""
    x = graph.tensor(op.inputs[0])
    return (float(np.float32(x.scale)) * (args[0].astype(np.int64) - x.zero_point)
            ).astype(np.float32)


KERNELS: dict[OpKind, Kernel] = {
    OpKind.CONV_2D: reference_ops.conv2d,
    OpKind.DEPTHWISE_CONV_2D: reference_ops.depthwise_conv2d,
    OpKind.ADD: elementwise.add,
    OpKind.AVERAGE_POOL_2D: reference_ops.average_pool2d,
    OpKind.MEAN: reference_ops.mean,
    OpKind.FULLY_CONNECTED: reference_ops.fully_connected,
    OpKind.SOFTMAX: reference_ops.softmax,
    OpKind.PAD: _pad,
    OpKind.TRANSPOSE: _transpose,
    OpKind.RESHAPE: _reshape,
    OpKind.QUANTIZE: _quantize,
    OpKind.DEQUANTIZE: _dequantize,
    OpKind.MUL: elementwise.mul,
    OpKind.SUB: elementwise.sub,
    OpKind.HARD_SWISH: elementwise.hard_swish,
    OpKind.LOGISTIC: elementwise.logistic,
    OpKind.RESIZE_BILINEAR: spatial.resize_bilinear,
    OpKind.RESIZE_NEAREST_NEIGHBOR: spatial.resize_nearest_neighbor,
    OpKind.CONCATENATION: spatial.concatenation,
    OpKind.MAX_POOL_2D: spatial.max_pool2d,
    OpKind.ARG_MAX: spatial.arg_max,
    OpKind.SHAPE: shape_ops.shape,
    OpKind.STRIDED_SLICE: shape_ops.strided_slice,
    OpKind.PACK: shape_ops.pack,
    OpKind.GATHER: shape_ops.gather,
    OpKind.TILE: shape_ops.tile,
}


def check_inputs(graph: Graph, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Return {input name: array}, raising MnvError on a count, shape or dtype mismatch."""
    if len(inputs) != len(graph.inputs):
        raise MnvError(f"{file_label(graph.name)}: expected {len(graph.inputs)} input array(s), "
                       f"got {len(inputs)}")
    env = {}
    for name, array in zip(graph.inputs, inputs, strict=True):
        t = graph.tensor(name)
        array = np.asarray(array)
        if array.shape != t.shape or array.dtype != t.dtype.np:
            raise MnvError(f"input {quoted(name)}: expected shape {t.shape} {t.dtype.value}, "
                           f"got shape {array.shape} {array.dtype}")
        env[name] = array
    return env


def run_all(graph: Graph, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Run the graph; return every activation tensor (inputs and op outputs) by name."""
    env = check_inputs(graph, inputs)
    for op in graph.ops:
        args = [env[n] if n in env else graph.tensor(n).data for n in op.inputs]
        if any(a is None for a in args):
            raise IRError(f"{op.describe()}: an input has no value")
        try:
            result = KERNELS[op.kind](graph, op, args)
        except ValueError as exc:  # quant.py rejects scales TFLM's Prepare would reject
            raise UnsupportedError(f"{op.describe()}: {exc}") from None
        out = graph.tensor(op.outputs[0])
        if result.shape != out.shape or result.dtype != out.dtype.np:
            raise IRError(f"{op.describe()}: the reference produced {result.shape} "
                          f"{result.dtype} for {quoted(out.name)}, expected {out.shape} "
                          f"{out.dtype.value}")
        env[op.outputs[0]] = result
    return env


def run(graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run the graph on `inputs` (in `graph.inputs` order); return its outputs in order."""
    env = run_all(graph, inputs)
    return [env[name] if name in env else graph.tensor(name).data for name in graph.outputs]
