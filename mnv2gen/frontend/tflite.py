"""TFLite front end: a .tflite flatbuffer -> IR Graph, a faithful translation.

Nothing is folded here (PAD stays PAD; the passes rewrite). Reading uses the
pure-Python `tflite` package, so this works wherever Python does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding as TflPadding
from tflite.TensorType import TensorType

from mnv2gen.errors import IRError, MnvError, ModelError, UnsupportedError, file_label, quoted
from mnv2gen.frontend.validate import (
    HINT_LIMITS,
    LIMITS,
    check_operands,
    check_shape,
    check_window,
    validate_graph,
)
from mnv2gen.ir import (
    Activation,
    AddAttrs,
    AxisAttrs,
    ConcatAttrs,
    ConvAttrs,
    DType,
    FullyConnectedAttrs,
    GatherAttrs,
    Graph,
    MeanAttrs,
    NoAttrs,
    Op,
    OpKind,
    PadAttrs,
    Padding,
    PoolAttrs,
    QuantParams,
    ResizeAttrs,
    SoftmaxAttrs,
    StridedSliceAttrs,
    Tensor,
    TransposeAttrs,
)
from mnv2gen.shapes import FLOAT_TAIL, INT8_BODY, same_padding

_OPERATOR_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_OPTION_TYPES = {k: v for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
_OPTION_NAMES = {v: k for k, v in _OPTION_TYPES.items()}
#: Largest model file read (a float ONNX MobileNetV2 1.4 is 25 MB; int8 TFLite 7 MB).
MAX_FILE_BYTES = 256 << 20
# What the flatbuffers runtime raises on offsets and lengths that point outside the data.
_FLATBUFFER_ERRORS = (struct.error, IndexError, ValueError, TypeError, AttributeError,
                      OverflowError)
_CORRUPT_HINT = "the file is truncated or corrupt"


class _OptionsMismatch(Exception):
    """An operator's options table is of another type than its operator needs."""

_DTYPES = {
    TensorType.INT8: DType.INT8, TensorType.UINT8: DType.UINT8, TensorType.INT16: DType.INT16,
    TensorType.INT32: DType.INT32, TensorType.INT64: DType.INT64,
    TensorType.FLOAT32: DType.FLOAT32,
}
_TYPE_NAMES = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}

_ACTIVATIONS = {
    ActivationFunctionType.NONE: Activation.NONE,
    ActivationFunctionType.RELU: Activation.RELU,
    ActivationFunctionType.RELU6: Activation.RELU6,
    ActivationFunctionType.RELU_N1_TO_1: Activation.RELU_N1_TO_1,
}


class _Reader:
    """Holds the parsed flatbuffer while one model is translated.

    Every raw field access runs inside `reading(where)`, so a field that points outside
    the file is reported as such, naming the table it belongs to; indices and vector
    lengths are checked before they are followed (flatbuffers does not check them).
    """

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label
        with self.reading("the model table"):
            self.model = tflite.Model.GetRootAsModel(data, 0)
            subgraphs = self.count("subgraphs", self.model.SubgraphsLength())
            self.opcode_count = self.count("operator codes", self.model.OperatorCodesLength())
            self.buffer_count = self.count("buffers", self.model.BuffersLength())
        if subgraphs != 1:
            raise UnsupportedError(
                f"{label}: has {subgraphs} subgraphs; only single-subgraph "
                "models are supported", "control flow (WHILE/IF) is not part of MobileNets")
        with self.reading("subgraph 0"):
            self.subgraph = self.model.Subgraphs(0)
            self.tensor_count = self.count("tensors", self.subgraph.TensorsLength())
            self.operator_count = self.count("operators", self.subgraph.OperatorsLength())
        self.names = self._unique_names()

    @contextlib.contextmanager
    def reading(self, where: str) -> Iterator[None]:
        """Turn the flatbuffers runtime's errors inside the block into one ModelError."""
        try:
            yield
        except _FLATBUFFER_ERRORS as exc:
            what = ("an offset or length points outside the file"
                    if isinstance(exc, (struct.error, IndexError)) else
                    f"it holds invalid data ({type(exc).__name__})")
            raise ModelError(f"{self.label}: {where} cannot be read: {what}",
                             _CORRUPT_HINT) from None

    def count(self, what: str, n: int) -> int:
        """Return a vector length after checking it can fit in the file (4 bytes each)."""
        if not 0 <= n <= len(self.data) // 4:
            raise ModelError(f"{self.label}: the file claims {n:,} {what}, more than its "
                             f"{len(self.data):,} bytes can hold", _CORRUPT_HINT)
        return n

    def tensor_index(self, where: str, i: int, optional: bool = False) -> int:
        """Return a tensor index after checking it is in range (-1 allowed if optional)."""
        if not (0 <= i < self.tensor_count or (optional and i == -1)):
            raise ModelError(f"{self.label}: {where} refers to tensor {i}, which does not "
                             f"exist (the subgraph has {self.tensor_count} tensors)",
                             _CORRUPT_HINT)
        return i

    def _unique_names(self) -> list[str]:
        names, seen = [], set()
        for i in range(self.tensor_count):
            with self.reading(f"the name of tensor {i}"):
                raw = self.subgraph.Tensors(i).Name()
            name = raw.decode("utf-8", "replace") if raw else f"tensor_{i}"
            base, n = name, 0
            while name in seen:  # a file may repeat names, even the ones made here
                n += 1
                name = f"{base}#{i}" if n == 1 else f"{base}#{i}.{n}"
            seen.add(name)
            names.append(name)
        return names

    def tensor(self, index: int) -> Tensor:
        with self.reading(f"tensor {index}"):
            t = self.subgraph.Tensors(index)
            type_code = t.Type()
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            q = t.Quantization()
            scales, zero_points, axis = None, None, 0
            if q is not None and q.ScaleLength() > 0:
                scales = tuple(float(s) for s in q.ScaleAsNumpy())
                zero_points = (tuple(int(z) for z in q.ZeroPointAsNumpy())
                               if q.ZeroPointLength() else (0,) * len(scales))
                axis = int(q.QuantizedDimension())
            buffer_index = int(t.Buffer())
        name = self.names[index]
        where = f"tensor {index} ({quoted(name)})"
        if type_code not in _DTYPES:
            raise UnsupportedError(
                f"{self.label}: {where} has type {_TYPE_NAMES.get(type_code, type_code)}",
                "supported tensor types: INT8, UINT8, INT16, INT32, INT64, FLOAT32")
        dtype = _DTYPES[type_code]
        check_shape(self.label, where, shape)
        quant = None if scales is None else QuantParams(scales, zero_points, axis)
        return Tensor(name, shape, dtype, quant,
                      self._buffer_data(where, buffer_index, dtype, shape))

    def _buffer_data(self, where: str, index: int, dtype: DType, shape: tuple[int, ...]):
        if not 0 <= index < self.buffer_count:
            raise ModelError(f"{self.label}: {where} refers to buffer {index}, which does not "
                             f"exist (the file has {self.buffer_count} buffers)", _CORRUPT_HINT)
        with self.reading(f"buffer {index} of {where}"):
            buf = self.model.Buffers(index)
            if buf is None:
                return None
            offset, size = buf.Offset(), buf.Size()
            if offset > 1:  # large models keep buffers after the flatbuffer
                raw = self.data[offset:offset + size]
            elif buf.DataLength() > 0:
                raw = buf.DataAsNumpy().tobytes()
            else:
                return None
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * dtype.size_bytes:
            raise ModelError(f"{self.label}: {where} holds {len(raw)} bytes, its shape "
                             f"{shape} needs {count * dtype.size_bytes}", _CORRUPT_HINT)
        array = np.frombuffer(raw, dtype=dtype.np).reshape(shape).copy()
        array.flags.writeable = False
        return array


def _activation(reader: _Reader, index: int, code: int) -> Activation:
    if code not in _ACTIVATIONS:
        raise UnsupportedError(
            f"{reader.label}: operator {index} has fused activation {code}",
            "supported fused activations: NONE, RELU, RELU6, RELU_N1_TO_1")
    return _ACTIVATIONS[code]


def _options(op, cls):
    """Return the operator's options as a `cls` table, None when it has none; raises
    _OptionsMismatch when the file says they are of another type."""
    table = op.BuiltinOptions()
    if table is None:
        return None
    expected = _OPTION_TYPES.get(cls.__name__)
    if expected is not None and op.BuiltinOptionsType() != expected:
        raise _OptionsMismatch(cls.__name__, op.BuiltinOptionsType())
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _window(reader, index, op_name: str, opts, kernel) -> tuple[int, int, int, int]:
    """Return (stride_h, stride_w, dilation_h, dilation_w) of window options, checked."""
    strides = (opts.StrideH(), opts.StrideW())
    dilations = tuple((getattr(opts, f"Dilation{a}Factor", lambda: 1)() or 1) for a in "HW")
    check_window(reader.label, f"operator {index} ({op_name})", strides, dilations, kernel)
    return (*strides, *dilations)


def _explicit_padding(reader, index, kind: int, in_shape, kernel, window) -> Padding:
    if kind == TflPadding.VALID:
        return Padding()
    if kind != TflPadding.SAME:
        raise ModelError(f"{reader.label}: operator {index} has padding type {kind}",
                         "TFLite padding is SAME (0) or VALID (1); the file is corrupt")
    sh, sw, dh, dw = window
    top, bottom = same_padding(in_shape[1], kernel[0], sh, dh)
    left, right = same_padding(in_shape[2], kernel[1], sw, dw)
    return Padding(top, bottom, left, right)


def _conv_attrs(reader, index, op, tensors) -> ConvAttrs:
    opts = _options(op, tflite.Conv2DOptions)
    kernel = tensors[1].shape[1:3]
    win = _window(reader, index, "CONV_2D", opts, kernel)
    return ConvAttrs(win[0], win[1],
                     _explicit_padding(reader, index, opts.Padding(), tensors[0].shape, kernel,
                                       win),
                     _activation(reader, index, opts.FusedActivationFunction()), win[2], win[3])


def _depthwise_attrs(reader, index, op, tensors) -> ConvAttrs:
    opts = _options(op, tflite.DepthwiseConv2DOptions)
    _, kh, kw, out_c = tensors[1].shape
    win = _window(reader, index, "DEPTHWISE_CONV_2D", opts, (kh, kw))
    # Converters leave stale depth_multiplier values; the shapes are authoritative.
    multiplier = max(out_c // max(tensors[0].shape[3], 1), 1)
    return ConvAttrs(win[0], win[1],
                     _explicit_padding(reader, index, opts.Padding(), tensors[0].shape,
                                       (kh, kw), win),
                     _activation(reader, index, opts.FusedActivationFunction()), win[2], win[3],
                     multiplier)


def _pool_attrs(reader, index, op, tensors) -> PoolAttrs:
    opts = _options(op, tflite.Pool2DOptions)
    fh, fw = opts.FilterHeight(), opts.FilterWidth()
    win = _window(reader, index, "pooling", opts, (fh, fw))
    return PoolAttrs(fh, fw, win[0], win[1],
                     _explicit_padding(reader, index, opts.Padding(), tensors[0].shape,
                                       (fh, fw), win),
                     _activation(reader, index, opts.FusedActivationFunction()))


def _binary_attrs(options_class):
    def parse(reader, index, op, tensors) -> AddAttrs:
        opts = _options(op, options_class)
        return AddAttrs(_activation(reader, index,
                                    opts.FusedActivationFunction() if opts else 0))
    return parse


def _fc_attrs(reader, index, op, tensors) -> FullyConnectedAttrs:
    opts = _options(op, tflite.FullyConnectedOptions)
    if opts is not None and opts.WeightsFormat() != 0:
        raise UnsupportedError(f"{reader.label}: operator {index} (FULLY_CONNECTED) uses "
                               "shuffled weights", "only the DEFAULT weights format is supported")
    return FullyConnectedAttrs(_activation(reader, index,
                                           opts.FusedActivationFunction() if opts else 0))


def _const_ints(reader, index, tensor: Tensor | None, what: str) -> tuple[int, ...]:
    if tensor is None or not tensor.is_const:
        raise UnsupportedError(f"{reader.label}: operator {index} has a non-constant {what}",
                               "dynamic shapes are not supported")
    if tensor.dtype not in (DType.INT32, DType.INT64):
        raise ModelError(f"{reader.label}: operator {index}: its {what} "
                         f"({quoted(tensor.name)}) is {tensor.dtype.value}, not int32",
                         _CORRUPT_HINT)
    return tuple(int(v) for v in tensor.data.reshape(-1))


def _second(reader, index, tensors, what: str) -> Tensor:
    if len(tensors) < 2 or tensors[1] is None:
        raise ModelError(f"{reader.label}: operator {index} has no {what} input",
                         _CORRUPT_HINT)
    return tensors[1]


def _mean_attrs(reader, index, op, tensors) -> MeanAttrs:
    opts = _options(op, tflite.ReducerOptions)
    rank = len(tensors[0].shape)
    if rank == 0:
        raise ModelError(f"{reader.label}: operator {index} (MEAN) reduces a scalar",
                         _CORRUPT_HINT)
    axes = sorted({a % rank for a in _const_ints(reader, index,
                                                 _second(reader, index, tensors, "axis"),
                                                 "axis")})
    return MeanAttrs(tuple(axes), bool(opts.KeepDims()) if opts else False)


def _pad_attrs(reader, index, op, tensors) -> PadAttrs:
    flat = _const_ints(reader, index, _second(reader, index, tensors, "paddings"), "paddings")
    return PadAttrs(tuple((flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)))


def _axis(reader, index, value: int, rank: int, kind: str) -> int:
    if not -rank <= value < rank:
        raise ModelError(f"{reader.label}: operator {index} ({kind}) has axis {value} for a "
                         f"rank-{rank} tensor", "the file is corrupt")
    return value % rank


def _resize_attrs(options_class):
    def parse(reader, index, op, tensors) -> ResizeAttrs:
        opts = _options(op, options_class)
        size = _const_ints(reader, index, tensors[1], "output size")
        if len(size) != 2 or len(tensors[0].shape) != 4:
            raise UnsupportedError(f"{reader.label}: operator {index} resizes a "
                                   f"{len(tensors[0].shape)}-D tensor to {size}",
                                   "resize works on NHWC tensors with a [height, width] size")
        return ResizeAttrs(size[0], size[1], bool(opts.AlignCorners()) if opts else False,
                           bool(opts.HalfPixelCenters()) if opts else False)
    return parse


def _concat_attrs(reader, index, op, tensors) -> ConcatAttrs:
    opts = _options(op, tflite.ConcatenationOptions)
    axis = _axis(reader, index, opts.Axis() if opts else 0, len(tensors[0].shape),
                 "CONCATENATION")
    return ConcatAttrs(axis, _activation(reader, index,
                                         opts.FusedActivationFunction() if opts else 0))


def _arg_max_attrs(reader, index, op, tensors) -> AxisAttrs:
    (axis,) = _const_ints(reader, index, tensors[1], "axis")[:1] or (0,)
    return AxisAttrs(_axis(reader, index, axis, len(tensors[0].shape), "ARG_MAX"))


def _pack_attrs(reader, index, op, tensors) -> AxisAttrs:
    opts = _options(op, tflite.PackOptions)
    return AxisAttrs(_axis(reader, index, opts.Axis() if opts else 0,
                           len(tensors[0].shape) + 1, "PACK"))


def _gather_attrs(reader, index, op, tensors) -> GatherAttrs:
    opts = _options(op, tflite.GatherOptions)
    axis = _axis(reader, index, opts.Axis() if opts else 0, len(tensors[0].shape), "GATHER")
    return GatherAttrs(axis, int(opts.BatchDims()) if opts else 0)


def _strided_slice_attrs(reader, index, op, tensors) -> StridedSliceAttrs:
    opts = _options(op, tflite.StridedSliceOptions)
    if opts is not None and (opts.EllipsisMask() or opts.NewAxisMask()):
        raise UnsupportedError(f"{reader.label}: operator {index} (STRIDED_SLICE) uses an "
                               "ellipsis or new-axis mask",
                               "supported: begin, end and shrink-axis masks")
    begin, end, strides = (_const_ints(reader, index, tensors[i], what) for i, what in
                           ((1, "begin"), (2, "end"), (3, "strides")))
    if not len(begin) == len(end) == len(strides) or 0 in strides:
        raise ModelError(f"{reader.label}: operator {index} (STRIDED_SLICE) has begin/end/"
                         f"strides {begin}/{end}/{strides}", "the file is corrupt")
    return StridedSliceAttrs(begin, end, strides, opts.BeginMask() if opts else 0,
                             opts.EndMask() if opts else 0,
                             opts.ShrinkAxisMask() if opts else 0,
                             bool(opts.Offset()) if opts else False)


def _transpose_attrs(reader, index, op, tensors) -> TransposeAttrs:
    return TransposeAttrs(_const_ints(reader, index,
                                      _second(reader, index, tensors, "permutation"),
                                      "permutation"))


def _softmax_attrs(reader, index, op, tensors) -> SoftmaxAttrs:
    opts = _options(op, tflite.SoftmaxOptions)
    return SoftmaxAttrs(float(opts.Beta()) if opts else 1.0)


def _no_attrs(reader, index, op, tensors) -> NoAttrs:
    return NoAttrs()


def _reshape_inputs(tensors: list[Tensor]) -> int:
    """RESHAPE keeps a computed (non-constant) shape operand until fold_constants."""
    return 2 if len(tensors) > 1 and tensors[1] is not None and not tensors[1].is_const else 1


# TFLite builtin -> (IR kind, attribute parser, tensor inputs the IR keeps: a count,
# ALL, or a function of the operand tensors)
ALL = -1
OPERATORS: dict[str, tuple[OpKind, Callable, int | Callable]] = {
    "CONV_2D": (OpKind.CONV_2D, _conv_attrs, 3),
    "DEPTHWISE_CONV_2D": (OpKind.DEPTHWISE_CONV_2D, _depthwise_attrs, 3),
    "ADD": (OpKind.ADD, _binary_attrs(tflite.AddOptions), 2),
    "AVERAGE_POOL_2D": (OpKind.AVERAGE_POOL_2D, _pool_attrs, 1),
    "MEAN": (OpKind.MEAN, _mean_attrs, 1),
    "FULLY_CONNECTED": (OpKind.FULLY_CONNECTED, _fc_attrs, 3),
    "RESHAPE": (OpKind.RESHAPE, _no_attrs, _reshape_inputs),
    "SOFTMAX": (OpKind.SOFTMAX, _softmax_attrs, 1),
    "PAD": (OpKind.PAD, _pad_attrs, 1),
    "TRANSPOSE": (OpKind.TRANSPOSE, _transpose_attrs, 1),
    "QUANTIZE": (OpKind.QUANTIZE, _no_attrs, 1),
    "DEQUANTIZE": (OpKind.DEQUANTIZE, _no_attrs, 1),
    "MUL": (OpKind.MUL, _binary_attrs(tflite.MulOptions), 2),
    "SUB": (OpKind.SUB, _binary_attrs(tflite.SubOptions), 2),
    "HARD_SWISH": (OpKind.HARD_SWISH, _no_attrs, 1),
    "LOGISTIC": (OpKind.LOGISTIC, _no_attrs, 1),
    "RESIZE_BILINEAR": (OpKind.RESIZE_BILINEAR, _resize_attrs(tflite.ResizeBilinearOptions),
                        1),
    "RESIZE_NEAREST_NEIGHBOR": (OpKind.RESIZE_NEAREST_NEIGHBOR,
                                _resize_attrs(tflite.ResizeNearestNeighborOptions), 1),
    "CONCATENATION": (OpKind.CONCATENATION, _concat_attrs, ALL),
    "MAX_POOL_2D": (OpKind.MAX_POOL_2D, _pool_attrs, 1),
    "ARG_MAX": (OpKind.ARG_MAX, _arg_max_attrs, 1),
    "SHAPE": (OpKind.SHAPE, _no_attrs, 1),
    "STRIDED_SLICE": (OpKind.STRIDED_SLICE, _strided_slice_attrs, 1),
    "PACK": (OpKind.PACK, _pack_attrs, ALL),
    "GATHER": (OpKind.GATHER, _gather_attrs, 2),
    "TILE": (OpKind.TILE, _no_attrs, 2),
}
SUPPORTED = ", ".join(OPERATORS)


def _zero_bias(index: int, kind: OpKind, x: Tensor, w: Tensor) -> Tensor:
    """Return an explicit zero bias for a weighted op that has none in the file."""
    out_c = w.shape[-1] if kind is OpKind.DEPTHWISE_CONV_2D else w.shape[0]
    scales = tuple(float(np.float32(x.scale) * np.float32(s)) for s in w.quant.scale)
    quant = QuantParams(scales, (0,) * len(scales), 0)
    data = np.zeros(out_c, np.int32)
    data.flags.writeable = False
    return Tensor(f"op{index}_zero_bias", (out_c,), DType.INT32, quant, data)


_WEIGHTED = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED)
_INTEGER = (DType.INT32, DType.INT64)


def _int8_operands(kind: OpKind, tensors: list[Tensor], output: Tensor) -> list[Tensor]:
    """Return the operands that must be quantised int8 activations (or int8 constants)."""
    if kind is OpKind.ARG_MAX:
        return [tensors[0]]
    if kind not in INT8_BODY:
        return []
    operands = [t for t in tensors if t is not None] + [output]
    if kind in FLOAT_TAIL and all(t.dtype is DType.FLOAT32 for t in operands):
        return []  # float arithmetic after the last DEQUANTIZE: folded, or refused by codegen
    if kind is OpKind.CONCATENATION:
        return [*tensors, output]
    if kind in (OpKind.ADD, OpKind.SUB, OpKind.MUL):
        return [*tensors[:2], output]
    return [tensors[0], output]


def _check_quantisation(reader: _Reader, index: int, kind: OpKind, tensors: list[Tensor],
                        output: Tensor) -> None:
    """Reject float, hybrid, uint8-weight and int16 models with a precise message."""
    where = f"{reader.label}: operator {index} ({kind.value})"
    if kind is OpKind.ARG_MAX and output.dtype not in _INTEGER:
        raise UnsupportedError(f"{where}: output {quoted(output.name)} is {output.dtype.value}",
                               "ARG_MAX outputs int32 or int64 indices")
    for t in _int8_operands(kind, tensors, output):
        if t.dtype is DType.UINT8 and kind in _WEIGHTED and tensors[1].dtype is DType.UINT8:
            raise UnsupportedError(
                f"{where}: legacy uint8 quantisation (uint8 activations, asymmetric uint8 "
                "weights, as TensorFlow 1 quantisation-aware training wrote); TFLite Micro no "
                "longer runs it either",
                "re-export with full-integer int8 post-training quantisation")
        if t.dtype is DType.FLOAT32:
            raise UnsupportedError(
                f"{where} computes in float32 (tensor {quoted(t.name)}); mnv2gen needs a fully "
                "int8-quantised model",
                "convert with full-integer post-training quantisation (int8 activations and "
                "weights), or quantise an ONNX model with `mnv2gen quantize`")
        if t.dtype is not DType.INT8 or t.quant is None:
            raise UnsupportedError(
                f"{where}: tensor {quoted(t.name)} is {t.dtype.value}"
                f"{'' if t.quant else ' without quantisation'}; activations must be int8",
                "supported: int8 activations (asymmetric), int8 weights (symmetric), int32 bias")
    if kind in _WEIGHTED:
        w = tensors[1]
        if w.dtype is not DType.INT8 or w.quant is None or not w.is_const:
            raise UnsupportedError(
                f"{where}: weights {quoted(w.name)} are {w.dtype.value}"
                f"{'' if w.is_const else ' and not constant'}",
                "supported weights: constant int8, symmetric per-tensor or per-channel")
        if any(z != 0 for z in w.quant.zero_point):
            raise UnsupportedError(f"{where}: weights {quoted(w.name)} are asymmetric",
                                   "int8 weights must have zero point 0 (symmetric)")
        if len(tensors) > 2 and tensors[2] is not None and tensors[2].dtype is not DType.INT32:
            raise UnsupportedError(f"{where}: bias {quoted(tensors[2].name)} is "
                                   f"{tensors[2].dtype.value}", "bias must be int32")


def _operator_name(reader: _Reader, index: int, opcode_index: int) -> str:
    """Return the builtin operator name of an opcode (or CUSTOM 'code' / builtin N)."""
    if not 0 <= opcode_index < reader.opcode_count:
        raise ModelError(f"{reader.label}: operator {index} has opcode index {opcode_index}, "
                         f"which does not exist (the file has {reader.opcode_count} operator "
                         "codes)", _CORRUPT_HINT)
    with reader.reading(f"operator code {opcode_index}"):
        code_table = reader.model.OperatorCodes(opcode_index)
        code = max(code_table.DeprecatedBuiltinCode(), code_table.BuiltinCode())
        custom = code_table.CustomCode() if _OPERATOR_NAMES.get(code) == "CUSTOM" else None
    if _OPERATOR_NAMES.get(code) == "CUSTOM":
        return f"CUSTOM {quoted(custom or b'?')}"
    return _OPERATOR_NAMES.get(code, f"builtin code {code}")


def _translate_op(reader: _Reader, index: int, tensor_of) -> Op:
    where = f"operator {index}"
    with reader.reading(where):
        op = reader.subgraph.Operators(index)
        opcode_index = op.OpcodeIndex()
        in_idx = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        out_idx = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
    op_name = _operator_name(reader, index, opcode_index)
    if op_name not in OPERATORS:
        raise UnsupportedError(f"{reader.label}: operator {index} ({op_name}) is not supported",
                               f"supported operators: {SUPPORTED}")
    kind, parse_attrs, keep = OPERATORS[op_name]
    where = f"operator {index} ({op_name})"
    tensors = [tensor_of(reader.tensor_index(where, i, optional=True)) if i >= 0 else None
               for i in in_idx]
    if len(out_idx) != 1 or not tensors or tensors[0] is None:
        raise ModelError(f"{reader.label}: {where} has {len(in_idx)} inputs and "
                         f"{len(out_idx)} outputs", _CORRUPT_HINT)
    output = tensor_of(reader.tensor_index(where, out_idx[0]))
    n_inputs = len(tensors) if keep == ALL else keep(tensors) if callable(keep) else keep
    weighted = kind in _WEIGHTED
    if not weighted and (len(tensors) < n_inputs or None in tensors[:n_inputs]) or (
            kind is OpKind.STRIDED_SLICE and len(tensors) < 4) or (
            kind in (OpKind.RESIZE_BILINEAR, OpKind.RESIZE_NEAREST_NEIGHBOR, OpKind.ARG_MAX)
            and len(tensors) < 2) or (weighted and (len(tensors) < 2 or None in tensors[:2])):
        raise ModelError(f"{reader.label}: {where} has {len(in_idx)} inputs", _CORRUPT_HINT)
    _check_quantisation(reader, index, kind, tensors, output)
    check_operands(reader.label, Op(kind, "", (), (), NoAttrs(), index), tensors[:n_inputs],
                   output)
    try:
        with reader.reading(f"the options of {where}"):
            attrs = parse_attrs(reader, index, op, tensors)
    except _OptionsMismatch as exc:
        expected, got = exc.args
        raise ModelError(f"{reader.label}: {where} has options of type "
                         f"{_OPTION_NAMES.get(got, got)}, expected {expected}",
                         _CORRUPT_HINT) from None
    if weighted and (len(tensors) < 3 or tensors[2] is None):
        tensors = tensors[:2] + [_zero_bias(index, kind, tensors[0], tensors[1])]
    inputs = tuple(t.name for t in tensors[:n_inputs])
    name = f"op{index}_{kind.value.lower()}"
    return Op(kind, name, inputs, (output.name,), attrs, index), tensors[:n_inputs] + [output]


def read_model_bytes(path: str | Path, limit: int = MAX_FILE_BYTES,
                     what: str = "model file") -> bytes:
    """Return the bytes of a model file (or other input file, `what`), raising ModelError
    when it cannot be read, is not a regular file (a directory, FIFO, device such as
    /dev/zero) or exceeds `limit` bytes."""
    label = file_label(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelError(f"{label}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{label}: cannot read ({getattr(exc, 'strerror', None) or exc})"
                         ) from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelError(f"{label}: is a directory, expected a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{label}: is not a regular file (a device, FIFO or socket)",
                         f"give the path of a {what}")
    if info.st_size > limit:
        raise ModelError(f"{label}: is {info.st_size:,} bytes; {what}s of at most "
                         f"{limit:,} bytes are read", "MobileNet-family models are far smaller")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ModelError(f"{label}: cannot read ({exc.strerror})") from None
    if len(data) > limit:
        raise ModelError(f"{label}: grew beyond {limit:,} bytes while being read")
    return data


def load_tflite(source: str | Path | bytes, label: str | None = None) -> Graph:
    """Return the IR Graph of a TFLite model given as a path or as bytes.

    Raises ModelError for unreadable, truncated or non-TFLite input and
    UnsupportedError for operators, types or quantisation outside the supported set.
    """
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), label or "<bytes>"
    else:
        data, label = read_model_bytes(source), label or file_label(source)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{label}: not a TFLite model (no 'TFL3' file identifier)",
                         "expected a .tflite flatbuffer; ONNX models are read by `mnv2gen "
                         "quantize`")
    try:
        return _translate(data, label)
    except IRError as exc:
        raise ModelError(f"{label}: inconsistent model: {exc.message}",
                         "the file may be corrupt") from None
    except MnvError:
        raise
    except Exception as exc:  # a path the reader's checks do not cover yet
        if os.environ.get("MNV2GEN_DEBUG"):
            raise
        raise ModelError(f"{label}: cannot translate the flatbuffer ({type(exc).__name__}: "
                         f"{quoted(exc)})", _CORRUPT_HINT) from None


def _translate(data: bytes, label: str) -> Graph:
    reader = _Reader(data, label)
    sg = reader.subgraph
    cache: dict[int, Tensor] = {}

    def tensor_of(i: int) -> Tensor:
        if i not in cache:
            cache[i] = reader.tensor(i)
        return cache[i]

    if reader.operator_count > LIMITS.max_ops:
        raise ModelError(f"{label}: has {reader.operator_count:,} operators; at most "
                         f"{LIMITS.max_ops:,} are supported", HINT_LIMITS)
    ops, tensors = [], {}
    for index in range(reader.operator_count):
        op, used = _translate_op(reader, index, tensor_of)
        ops.append(op)
        tensors.update((t.name, t) for t in used)
    with reader.reading("the subgraph's inputs and outputs"):
        io = [[int(i) for i in sg.InputsAsNumpy()] if sg.InputsLength() else [],
              [int(i) for i in sg.OutputsAsNumpy()] if sg.OutputsLength() else []]
    inputs, outputs = (tuple(tensor_of(reader.tensor_index(f"graph {role}", i)).name
                             for i in indices)
                       for role, indices in zip(("input", "output"), io, strict=True))
    for i in (*io[0], *io[1]):
        tensors.setdefault(cache[i].name, cache[i])
    if not any(t.dtype in (DType.INT8, DType.UINT8) and t.quant is not None
               for t in tensors.values()):
        raise UnsupportedError(f"{label}: a float model (no int8 weights)",
                               "mnv2gen needs a fully int8-quantised model")
    graph = Graph(name=Path(label).name, tensors=tensors, ops=tuple(ops), inputs=inputs,
                  outputs=outputs, source_sha256=hashlib.sha256(data).hexdigest())
    return validate_graph(graph, label)
