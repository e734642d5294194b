"""Serialise an IR Graph as a TFLite flatbuffer (schema v3, one subgraph) for TFLite Micro.

Two steps: `lower` turns IR operators into TFLite operators (adding the int32 constant
operands TFLite wants for MEAN axes, RESHAPE shape, PAD paddings and TRANSPOSE perm, and
an explicit PAD before a convolution whose padding is neither SAME nor VALID), then
`write_tflite` writes tensors, buffers and operators with the flatbuffers builder.
Buffer 0 is the empty buffer every activation tensor points at; each constant has its
own buffer, 16-byte aligned as the converter aligns them. Output depends only on the
graph, so the same graph always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

from mnv2gen.errors import IRError, UnsupportedError, quoted
from mnv2gen.ir import Activation, DType, Graph, Op, OpKind, Padding, Tensor
from mnv2gen.shapes import same_padding

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"

_TYPES = {DType.FLOAT32: tflite.TensorType.FLOAT32, DType.INT32: tflite.TensorType.INT32,
          DType.UINT8: tflite.TensorType.UINT8, DType.INT64: tflite.TensorType.INT64,
          DType.INT16: tflite.TensorType.INT16, DType.INT8: tflite.TensorType.INT8}
_ACTIVATIONS = {a: getattr(tflite.ActivationFunctionType, a.value) for a in Activation}


@dataclass(frozen=True)
class TflOp:
    """A TFLite operator before serialisation: options = (table name, {field: value})."""

    kind: str  # BuiltinOperator name
    version: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    options: tuple[str, dict] | None = None


@dataclass
class _Lowering:
    """The TFLite operators emitted so far and every tensor they use, by name."""

    tensors: dict[str, Tensor]
    ops: list[TflOp] = field(default_factory=list)

    def unique(self, name: str) -> str:
        candidate, n = name, 0
        while candidate in self.tensors:
            n += 1
            candidate = f"{name}_{n}"
        return candidate

    def const_int32(self, name: str, values) -> str:
        data = np.asarray(values, dtype=np.int32)
        t = Tensor(self.unique(name), data.shape, DType.INT32, None, data)
        self.tensors[t.name] = t
        return t.name

    def emit(self, kind: str, version: int, inputs, outputs, options=None) -> None:
        self.ops.append(TflOp(kind, version, tuple(inputs), tuple(outputs), options))

    def window_padding(self, op: Op, x: str, padding: Padding, kernel, stride, dilation=(1, 1)):
        """Return (input name, tflite Padding) for a sliding window, adding PAD if needed."""
        t = self.tensors[x]
        _, h, w, _ = t.shape
        same = (*same_padding(h, kernel[0], stride[0], dilation[0]),
                *same_padding(w, kernel[1], stride[1], dilation[1]))
        explicit = (padding.top, padding.bottom, padding.left, padding.right)
        if explicit == same:
            return x, tflite.Padding.SAME
        if explicit == (0, 0, 0, 0):
            return x, tflite.Padding.VALID
        if op.kind is OpKind.AVERAGE_POOL_2D:  # a PAD would change the averages' divisors
            raise UnsupportedError(f"{op.describe()}: padding {explicit} (top, bottom, left, "
                                   f"right) is neither SAME {same} nor VALID in TFLite")
        pads = ((0, 0), (padding.top, padding.bottom), (padding.left, padding.right), (0, 0))
        shape = tuple(d + a + b for d, (a, b) in zip(t.shape, pads, strict=True))
        padded = Tensor(self.unique(f"{op.name}/pad"), shape, t.dtype, t.quant)
        self.tensors[padded.name] = padded
        self.emit("PAD", _int8_version(t, 2), (x, self.const_int32(f"{op.name}/paddings", pads)),
                  (padded.name,), ("PadOptions", {}))
        return padded.name, tflite.Padding.VALID


def _int8_version(t: Tensor, int8_version: int) -> int:
    return int8_version if t.dtype is DType.INT8 else 1


def _conv(low: _Lowering, op: Op) -> None:
    a = op.attrs
    x, w, b = op.inputs
    kernel = low.tensors[w].shape[1:3]
    x_in = low.tensors[x]
    x, padding = low.window_padding(op, x, a.padding, kernel, (a.stride_h, a.stride_w),
                                    (a.dilation_h, a.dilation_w))
    fields = {"Padding": padding, "StrideW": a.stride_w, "StrideH": a.stride_h,
              "FusedActivationFunction": _ACTIVATIONS[a.activation],
              "DilationWFactor": a.dilation_w, "DilationHFactor": a.dilation_h}
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        fields["DepthMultiplier"] = a.depth_multiplier
        options = "DepthwiseConv2DOptions"
        version = 3 if x_in.dtype is DType.INT8 else (2 if a.dilation_h * a.dilation_w > 1 else 1)
    else:
        options, version = "Conv2DOptions", _int8_version(x_in, 3)
    low.emit(op.kind.value, version, (x, w, b), op.outputs, (options, fields))


def _average_pool(low: _Lowering, op: Op) -> None:
    a = op.attrs
    x, padding = low.window_padding(op, op.inputs[0], a.padding, (a.filter_h, a.filter_w),
                                    (a.stride_h, a.stride_w))
    fields = {"Padding": padding, "StrideW": a.stride_w, "StrideH": a.stride_h,
              "FilterWidth": a.filter_w, "FilterHeight": a.filter_h,
              "FusedActivationFunction": _ACTIVATIONS[a.activation]}
    low.emit(op.kind.value, _int8_version(low.tensors[x], 2), (x,), op.outputs,
             ("Pool2DOptions", fields))


def _add(low: _Lowering, op: Op) -> None:
    fields = {"FusedActivationFunction": _ACTIVATIONS[op.attrs.activation]}
    low.emit("ADD", _int8_version(low.tensors[op.inputs[0]], 2), op.inputs, op.outputs,
             ("AddOptions", fields))


def _fully_connected(low: _Lowering, op: Op) -> None:
    fields = {"FusedActivationFunction": _ACTIVATIONS[op.attrs.activation]}
    low.emit("FULLY_CONNECTED", _int8_version(low.tensors[op.inputs[0]], 4), op.inputs,
             op.outputs, ("FullyConnectedOptions", fields))


def _mean(low: _Lowering, op: Op) -> None:
    axes = low.const_int32(f"{op.name}/axes", op.attrs.axes)
    low.emit("MEAN", _int8_version(low.tensors[op.inputs[0]], 2), (op.inputs[0], axes),
             op.outputs, ("ReducerOptions", {"KeepDims": op.attrs.keep_dims}))


def _reshape(low: _Lowering, op: Op) -> None:
    new_shape = np.array(low.tensors[op.outputs[0]].shape, dtype=np.int32)
    shape = op.inputs[1] if len(op.inputs) > 1 else low.const_int32(f"{op.name}/shape",
                                                                    new_shape)
    low.emit("RESHAPE", 1, (op.inputs[0], shape), op.outputs,
             ("ReshapeOptions", {"NewShape": new_shape}))


def _softmax(low: _Lowering, op: Op) -> None:
    low.emit("SOFTMAX", _int8_version(low.tensors[op.inputs[0]], 2), op.inputs, op.outputs,
             ("SoftmaxOptions", {"Beta": op.attrs.beta}))


def _pad(low: _Lowering, op: Op) -> None:
    pads = low.const_int32(f"{op.name}/paddings", op.attrs.paddings)
    low.emit("PAD", _int8_version(low.tensors[op.inputs[0]], 2), (op.inputs[0], pads),
             op.outputs, ("PadOptions", {}))


def _transpose(low: _Lowering, op: Op) -> None:
    perm = low.const_int32(f"{op.name}/perm", op.attrs.perm)
    low.emit("TRANSPOSE", _int8_version(low.tensors[op.inputs[0]], 2), (op.inputs[0], perm),
             op.outputs, ("TransposeOptions", {}))


def _quantize(low: _Lowering, op: Op) -> None:
    version = 2 if low.tensors[op.outputs[0]].dtype is DType.INT16 else 1
    low.emit("QUANTIZE", version, op.inputs, op.outputs, ("QuantizeOptions", {}))


def _dequantize(low: _Lowering, op: Op) -> None:
    dtype = low.tensors[op.inputs[0]].dtype
    version = {DType.INT8: 2, DType.INT16: 3}.get(dtype, 1)
    low.emit("DEQUANTIZE", version, op.inputs, op.outputs, ("DequantizeOptions", {}))


def _binary(options: str):
    def lower_binary(low: _Lowering, op: Op) -> None:
        fields = {"FusedActivationFunction": _ACTIVATIONS[op.attrs.activation]}
        low.emit(op.kind.value, _int8_version(low.tensors[op.inputs[0]], 2), op.inputs,
                 op.outputs, (options, fields))
    return lower_binary


def _plain(version: int, options: str | None = None):
    """Return a lowering of a one-to-one operator with no (or empty) options."""
    def lower_plain(low: _Lowering, op: Op) -> None:
        low.emit(op.kind.value, _int8_version(low.tensors[op.inputs[0]], version), op.inputs,
                 op.outputs, (options, {}) if options else None)
    return lower_plain


def _resize(options: str):
    def lower_resize(low: _Lowering, op: Op) -> None:
        a = op.attrs
        size = low.const_int32(f"{op.name}/size", (a.height, a.width))
        version = 3 if a.half_pixel_centers else _int8_version(low.tensors[op.inputs[0]], 2)
        low.emit(op.kind.value, version, (op.inputs[0], size), op.outputs,
                 (options, {"AlignCorners": a.align_corners,
                            "HalfPixelCenters": a.half_pixel_centers}))
    return lower_resize


def _max_pool(low: _Lowering, op: Op) -> None:
    a, p = op.attrs, op.attrs.padding
    x = low.tensors[op.inputs[0]]
    same = (*same_padding(x.shape[1], a.filter_h, a.stride_h),
            *same_padding(x.shape[2], a.filter_w, a.stride_w))
    explicit = (p.top, p.bottom, p.left, p.right)
    if explicit not in (same, (0, 0, 0, 0)):  # a PAD of the zero point could win the max
        raise UnsupportedError(f"{op.describe()}: padding {explicit} is neither SAME {same} "
                               "nor VALID in TFLite")
    fields = {"Padding": tflite.Padding.SAME if explicit == same and any(same)
              else tflite.Padding.VALID, "StrideW": a.stride_w, "StrideH": a.stride_h,
              "FilterWidth": a.filter_w, "FilterHeight": a.filter_h,
              "FusedActivationFunction": _ACTIVATIONS[a.activation]}
    low.emit("MAX_POOL_2D", _int8_version(x, 2), op.inputs, op.outputs,
             ("Pool2DOptions", fields))


def _concatenation(low: _Lowering, op: Op) -> None:
    fields = {"Axis": op.attrs.axis,
              "FusedActivationFunction": _ACTIVATIONS[op.attrs.activation]}
    low.emit("CONCATENATION", _int8_version(low.tensors[op.inputs[0]], 2), op.inputs,
             op.outputs, ("ConcatenationOptions", fields))


def _arg_max(low: _Lowering, op: Op) -> None:
    axis = low.const_int32(f"{op.name}/axis", [op.attrs.axis])
    out_type = _TYPES[low.tensors[op.outputs[0]].dtype]
    low.emit("ARG_MAX", _int8_version(low.tensors[op.inputs[0]], 2), (op.inputs[0], axis),
             op.outputs, ("ArgMaxOptions", {"OutputType": out_type}))


def _shape(low: _Lowering, op: Op) -> None:
    low.emit("SHAPE", 1, op.inputs, op.outputs,
             ("ShapeOptions", {"OutType": _TYPES[low.tensors[op.outputs[0]].dtype]}))


def _strided_slice(low: _Lowering, op: Op) -> None:
    a = op.attrs
    operands = [low.const_int32(f"{op.name}/{k}", getattr(a, k)) for k in
                ("begin", "end", "strides")]
    low.emit("STRIDED_SLICE", _int8_version(low.tensors[op.inputs[0]], 2),
             (op.inputs[0], *operands), op.outputs,
             ("StridedSliceOptions", {"BeginMask": a.begin_mask, "EndMask": a.end_mask,
                                      "ShrinkAxisMask": a.shrink_axis_mask,
                                      "Offset": a.offset}))


def _pack(low: _Lowering, op: Op) -> None:
    low.emit("PACK", _int8_version(low.tensors[op.inputs[0]], 2), op.inputs, op.outputs,
             ("PackOptions", {"ValuesCount": len(op.inputs), "Axis": op.attrs.axis}))


def _gather(low: _Lowering, op: Op) -> None:
    low.emit("GATHER", _int8_version(low.tensors[op.inputs[0]], 2), op.inputs, op.outputs,
             ("GatherOptions", {"Axis": op.attrs.axis, "BatchDims": op.attrs.batch_dims}))


# One row per IR operator kind: how it becomes TFLite operators.
LOWERINGS: dict[OpKind, Callable[[_Lowering, Op], None]] = {
    OpKind.CONV_2D: _conv,
    OpKind.DEPTHWISE_CONV_2D: _conv,
    OpKind.ADD: _add,
    OpKind.AVERAGE_POOL_2D: _average_pool,
    OpKind.MEAN: _mean,
    OpKind.FULLY_CONNECTED: _fully_connected,
    OpKind.RESHAPE: _reshape,
    OpKind.SOFTMAX: _softmax,
    OpKind.PAD: _pad,
    OpKind.TRANSPOSE: _transpose,
    OpKind.QUANTIZE: _quantize,
    OpKind.DEQUANTIZE: _dequantize,
    OpKind.MUL: _binary("MulOptions"),
    OpKind.SUB: _binary("SubOptions"),
    OpKind.HARD_SWISH: _plain(1, "HardSwishOptions"),
    OpKind.LOGISTIC: _plain(2),
    OpKind.RESIZE_BILINEAR: _resize("ResizeBilinearOptions"),
    OpKind.RESIZE_NEAREST_NEIGHBOR: _resize("ResizeNearestNeighborOptions"),
    OpKind.CONCATENATION: _concatenation,
    OpKind.MAX_POOL_2D: _max_pool,
    OpKind.ARG_MAX: _arg_max,
    OpKind.SHAPE: _shape,
    OpKind.STRIDED_SLICE: _strided_slice,
    OpKind.PACK: _pack,
    OpKind.GATHER: _gather,
    OpKind.TILE: _plain(3, "TileOptions"),
}


def lower(graph: Graph) -> tuple[dict[str, Tensor], list[TflOp]]:
    """Return (all tensors incl. added constants, TFLite operators in execution order)."""
    low = _Lowering(dict(graph.tensors))
    for op in graph.ops:
        LOWERINGS[op.kind](low, op)
    return low.tensors, low.ops


def _first_use_order(graph: Graph, ops: list[TflOp]) -> list[str]:
    order = dict.fromkeys(graph.inputs)
    for op in ops:
        order.update(dict.fromkeys(op.inputs + op.outputs))
    order.update(dict.fromkeys(graph.outputs))
    return list(order)


def _offsets(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _aligned_bytes(builder: flatbuffers.Builder, data: bytes, alignment: int = 16) -> int:
    builder.StartVector(1, len(data), alignment)
    builder.head -= len(data)
    builder.Bytes[builder.head:builder.head + len(data)] = data
    return builder.EndVector()


def _table(builder: flatbuffers.Builder, name: str, fields: dict) -> int:
    """Build table `name` from {Field: value}; ndarray values become vectors first."""
    values = {k: builder.CreateNumpyVector(v) if isinstance(v, np.ndarray) else v
              for k, v in fields.items()}
    getattr(tflite, f"{name}Start")(builder)
    for key, value in values.items():
        getattr(tflite, f"{name}Add{key}")(builder, value)
    return getattr(tflite, f"{name}End")(builder)


def _tensor_table(builder: flatbuffers.Builder, t: Tensor, buffer: int) -> int:
    fields = {"Name": builder.CreateString(t.name),
              "Shape": builder.CreateNumpyVector(np.array(t.shape, dtype=np.int32)),
              "Type": _TYPES[t.dtype], "Buffer": buffer}
    if t.quant is not None:
        q = t.quant
        fields["Quantization"] = _table(builder, "QuantizationParameters", {
            "Scale": np.array(q.scale, dtype=np.float32),
            "ZeroPoint": np.array(q.zero_point, dtype=np.int64),
            "QuantizedDimension": q.axis})
    return _table(builder, "Tensor", fields)


def _const_bytes(t: Tensor) -> bytes:
    data = np.ascontiguousarray(t.data, dtype=t.dtype.np.newbyteorder("<"))
    if data.size != t.num_elements:
        raise IRError(f"constant {quoted(t.name)} holds {data.size} values for shape {t.shape}")
    return data.tobytes()


def write_tflite(graph: Graph) -> bytes:
    """Return `graph` as TFLite flatbuffer bytes (schema 3, one subgraph, identifier TFL3)."""
    graph.verify()
    tensors, ops = lower(graph)
    names = _first_use_order(graph, ops)
    index = {name: i for i, name in enumerate(names)}
    const_size = sum(tensors[n].size_bytes for n in names if tensors[n].is_const)
    builder = flatbuffers.Builder(const_size + 16 * len(names) + 65536)

    buffers = [_table(builder, "Buffer", {})]
    tensor_offsets = []
    for name in names:
        t = tensors[name]
        buffer = 0
        if t.is_const:
            data = _aligned_bytes(builder, _const_bytes(t))
            buffer = len(buffers)
            buffers.append(_table(builder, "Buffer", {"Data": data}))
        tensor_offsets.append(_tensor_table(builder, t, buffer))

    opcodes: dict[tuple[int, int], int] = {}
    op_offsets = []
    for op in ops:
        code = getattr(tflite.BuiltinOperator, op.kind)
        opcode_index = opcodes.setdefault((code, op.version), len(opcodes))
        fields = {"OpcodeIndex": opcode_index,
                  "Inputs": np.array([index[n] for n in op.inputs], dtype=np.int32),
                  "Outputs": np.array([index[n] for n in op.outputs], dtype=np.int32)}
        if op.options is not None:
            table, values = op.options
            fields["BuiltinOptionsType"] = getattr(tflite.BuiltinOptions, table)
            fields["BuiltinOptions"] = _table(builder, table, values)
        op_offsets.append(_table(builder, "Operator", fields))
    opcode_offsets = [_table(builder, "OperatorCode", {
        "DeprecatedBuiltinCode": min(code, 127), "Version": version, "BuiltinCode": code})
        for code, version in opcodes]

    subgraph = _table(builder, "SubGraph", {
        "Tensors": _offsets(builder, tensor_offsets),
        "Inputs": np.array([index[n] for n in graph.inputs], dtype=np.int32),
        "Outputs": np.array([index[n] for n in graph.outputs], dtype=np.int32),
        "Operators": _offsets(builder, op_offsets),
        "Name": builder.CreateString("main")})
    model = _table(builder, "Model", {
        "Version": SCHEMA_VERSION,
        "OperatorCodes": _offsets(builder, opcode_offsets),
        "Subgraphs": _offsets(builder, [subgraph]),
        "Description": builder.CreateString("mnv2gen"),
        "Buffers": _offsets(builder, buffers)})
    builder.Finish(model, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())
