"""TFLite front end: a .tflite flatbuffer -> IR Graph, a faithful translation.

Nothing is folded here (PAD stays PAD; the passes rewrite). Reading uses the
pure-Python `tflite` package, so this works wherever Python does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.Padding import Padding as TflPadding
from tflite.TensorType import TensorType

from mnv2gen.errors import IRError, ModelError, UnsupportedError
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
    """Holds the parsed flatbuffer while one model is translated."""

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise UnsupportedError(
                f"{label}: has {self.model.SubgraphsLength()} subgraphs; only single-subgraph "
                "models are supported", "control flow (WHILE/IF) is not part of MobileNets")
        self.subgraph = self.model.Subgraphs(0)
        self.names = self._unique_names()

    def _unique_names(self) -> list[str]:
        names, seen = [], set()
        for i in range(self.subgraph.TensorsLength()):
            raw = self.subgraph.Tensors(i).Name()
            name = raw.decode("utf-8", "replace") if raw else f"tensor_{i}"
            if name in seen:
                name = f"{name}#{i}"
            seen.add(name)
            names.append(name)
        return names

    def tensor(self, index: int) -> Tensor:
        t = self.subgraph.Tensors(index)
        name = self.names[index]
        if t.Type() not in _DTYPES:
            raise UnsupportedError(
                f"{self.label}: tensor {index} ({name!r}) has type "
                f"{_TYPE_NAMES.get(t.Type(), t.Type())}",
                "supported tensor types: INT8, UINT8, INT16, INT32, INT64, FLOAT32")
        dtype = _DTYPES[t.Type()]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() > 0:
            zps = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength())
            quant = QuantParams(scale=tuple(float(s) for s in q.ScaleAsNumpy()),
                                zero_point=tuple(int(z) for z in zps),
                                axis=int(q.QuantizedDimension()))
        return Tensor(name, shape, dtype, quant, self._buffer_data(t, dtype, shape, name))

    def _buffer_data(self, t, dtype: DType, shape: tuple[int, ...], name: str):
        buf = self.model.Buffers(t.Buffer())
        if buf is None:
            return None
        if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = self.data[buf.Offset():buf.Offset() + buf.Size()]
        elif buf.DataLength() > 0:
            raw = buf.DataAsNumpy().tobytes()
        else:
            return None
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * dtype.size_bytes:
            raise ModelError(f"{self.label}: tensor {name!r} holds {len(raw)} bytes, its shape "
                             f"{shape} needs {count * dtype.size_bytes}", "the file is corrupt")
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
    table = op.BuiltinOptions()
    if table is None:
        return None
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _explicit_padding(kind: int, in_shape, kh: int, kw: int, opts) -> Padding:
    if kind == TflPadding.VALID:
        return Padding()
    dh = getattr(opts, "DilationHFactor", lambda: 1)() or 1
    dw = getattr(opts, "DilationWFactor", lambda: 1)() or 1
    top, bottom = same_padding(in_shape[1], kh, opts.StrideH(), dh)
    left, right = same_padding(in_shape[2], kw, opts.StrideW(), dw)
    return Padding(top, bottom, left, right)


def _conv_attrs(reader, index, op, tensors) -> ConvAttrs:
    opts = _options(op, tflite.Conv2DOptions)
    _, kh, kw, _ = tensors[1].shape
    return ConvAttrs(opts.StrideH(), opts.StrideW(),
                     _explicit_padding(opts.Padding(), tensors[0].shape, kh, kw, opts),
                     _activation(reader, index, opts.FusedActivationFunction()),
                     opts.DilationHFactor() or 1, opts.DilationWFactor() or 1)


def _depthwise_attrs(reader, index, op, tensors) -> ConvAttrs:
    opts = _options(op, tflite.DepthwiseConv2DOptions)
    _, kh, kw, out_c = tensors[1].shape
    # Converters leave stale depth_multiplier values; the shapes are authoritative.
    multiplier = max(out_c // max(tensors[0].shape[3], 1), 1)
    return ConvAttrs(opts.StrideH(), opts.StrideW(),
                     _explicit_padding(opts.Padding(), tensors[0].shape, kh, kw, opts),
                     _activation(reader, index, opts.FusedActivationFunction()),
                     opts.DilationHFactor() or 1, opts.DilationWFactor() or 1, multiplier)


def _pool_attrs(reader, index, op, tensors) -> PoolAttrs:
    opts = _options(op, tflite.Pool2DOptions)
    fh, fw = opts.FilterHeight(), opts.FilterWidth()
    return PoolAttrs(fh, fw, opts.StrideH(), opts.StrideW(),
                     _explicit_padding(opts.Padding(), tensors[0].shape, fh, fw, opts),
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


def _const_ints(reader, index, tensor: Tensor, what: str) -> tuple[int, ...]:
    if not tensor.is_const:
        raise UnsupportedError(f"{reader.label}: operator {index} has a non-constant {what}",
                               "dynamic shapes are not supported")
    return tuple(int(v) for v in tensor.data.reshape(-1))


def _mean_attrs(reader, index, op, tensors) -> MeanAttrs:
    opts = _options(op, tflite.ReducerOptions)
    rank = len(tensors[0].shape)
    axes = sorted({a % rank for a in _const_ints(reader, index, tensors[1], "axis")})
    return MeanAttrs(tuple(axes), bool(opts.KeepDims()) if opts else False)


def _pad_attrs(reader, index, op, tensors) -> PadAttrs:
    flat = _const_ints(reader, index, tensors[1], "paddings")
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
    return TransposeAttrs(_const_ints(reader, index, tensors[1], "permutation"))


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
        raise UnsupportedError(f"{where}: output {output.name!r} is {output.dtype.value}",
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
                f"{where} computes in float32 (tensor {t.name!r}); mnv2gen needs a fully "
                "int8-quantised model",
                "convert with full-integer post-training quantisation (int8 activations and "
                "weights), or quantise an ONNX model with `mnv2gen quantize`")
        if t.dtype is not DType.INT8 or t.quant is None:
            raise UnsupportedError(
                f"{where}: tensor {t.name!r} is {t.dtype.value}"
                f"{'' if t.quant else ' without quantisation'}; activations must be int8",
                "supported: int8 activations (asymmetric), int8 weights (symmetric), int32 bias")
    if kind in _WEIGHTED:
        w = tensors[1]
        if w.dtype is not DType.INT8 or w.quant is None or not w.is_const:
            raise UnsupportedError(
                f"{where}: weights {w.name!r} are {w.dtype.value}"
                f"{'' if w.is_const else ' and not constant'}",
                "supported weights: constant int8, symmetric per-tensor or per-channel")
        if any(z != 0 for z in w.quant.zero_point):
            raise UnsupportedError(f"{where}: weights {w.name!r} are asymmetric",
                                   "int8 weights must have zero point 0 (symmetric)")
        if len(tensors) > 2 and tensors[2].dtype is not DType.INT32:
            raise UnsupportedError(f"{where}: bias {tensors[2].name!r} is "
                                   f"{tensors[2].dtype.value}", "bias must be int32")


def _translate_op(reader: _Reader, index: int, tensor_of) -> Op:
    op = reader.subgraph.Operators(index)
    code_table = reader.model.OperatorCodes(op.OpcodeIndex())
    code = max(code_table.DeprecatedBuiltinCode(), code_table.BuiltinCode())
    op_name = _OPERATOR_NAMES.get(code, str(code))
    if op_name == "CUSTOM":
        custom = code_table.CustomCode()
        op_name = f"CUSTOM '{custom.decode() if custom else '?'}'"
    if op_name not in OPERATORS:
        raise UnsupportedError(f"{reader.label}: operator {index} ({op_name}) is not supported",
                               f"supported operators: {SUPPORTED}")
    kind, parse_attrs, keep = OPERATORS[op_name]
    in_idx = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
    out_idx = [int(i) for i in op.OutputsAsNumpy()]
    tensors = [tensor_of(i) if i >= 0 else None for i in in_idx]
    if len(out_idx) != 1 or not tensors or tensors[0] is None:
        raise ModelError(f"{reader.label}: operator {index} ({op_name}) has "
                         f"{len(in_idx)} inputs and {len(out_idx)} outputs", "the file is corrupt")
    output = tensor_of(out_idx[0])
    n_inputs = len(tensors) if keep == ALL else keep(tensors) if callable(keep) else keep
    if kind not in _WEIGHTED and (len(tensors) < n_inputs or None in tensors[:n_inputs]) or (
            kind is OpKind.STRIDED_SLICE and len(tensors) < 4) or (
            kind in (OpKind.RESIZE_BILINEAR, OpKind.RESIZE_NEAREST_NEIGHBOR, OpKind.ARG_MAX)
            and len(tensors) < 2):
        raise ModelError(f"{reader.label}: operator {index} ({op_name}) has "
                         f"{len(in_idx)} inputs", "the file is corrupt")
    _check_quantisation(reader, index, kind, tensors, output)
    attrs = parse_attrs(reader, index, op, tensors)
    if kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED):
        if len(tensors) < 3 or tensors[2] is None:
            tensors = tensors[:2] + [_zero_bias(index, kind, tensors[0], tensors[1])]
        if kind is OpKind.FULLY_CONNECTED and len(tensors[1].shape) != 2:
            raise UnsupportedError(f"{reader.label}: operator {index} (FULLY_CONNECTED) has "
                                   f"weights of shape {tensors[1].shape}", "weights must be 2-D")
    inputs = tuple(t.name for t in tensors[:n_inputs])
    name = f"op{index}_{kind.value.lower()}"
    return Op(kind, name, inputs, (output.name,), attrs, index), tensors[:n_inputs] + [output]


def read_model_bytes(path: str | Path) -> bytes:
    """Return the bytes of a model file, raising ModelError when it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file")
    if p.is_dir():
        raise ModelError(f"{p}: is a directory, expected a model file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{p}: cannot read ({exc.strerror})") from None


def load_tflite(source: str | Path | bytes, label: str | None = None) -> Graph:
    """Return the IR Graph of a TFLite model given as a path or as bytes.

    Raises ModelError for unreadable, truncated or non-TFLite input and
    UnsupportedError for operators, types or quantisation outside the supported set.
    """
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), label or "<bytes>"
    else:
        data, label = read_model_bytes(source), label or str(source)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{label}: not a TFLite model (no 'TFL3' file identifier)",
                         "expected a .tflite flatbuffer; ONNX models are read by `mnv2gen "
                         "quantize`")
    try:
        return _translate(data, label)
    except (ModelError, UnsupportedError):
        raise
    except IRError as exc:
        raise ModelError(f"{label}: inconsistent model: {exc.message}",
                         "the file may be corrupt") from None
    except Exception as exc:  # flatbuffers raises bare errors on truncated data
        raise ModelError(f"{label}: cannot parse the flatbuffer ({type(exc).__name__}: {exc})",
                         "the file is truncated or corrupt") from None


def _translate(data: bytes, label: str) -> Graph:
    reader = _Reader(data, label)
    sg = reader.subgraph
    cache: dict[int, Tensor] = {}

    def tensor_of(i: int) -> Tensor:
        if i not in cache:
            cache[i] = reader.tensor(i)
        return cache[i]

    ops, tensors = [], {}
    for index in range(sg.OperatorsLength()):
        op, used = _translate_op(reader, index, tensor_of)
        ops.append(op)
        tensors.update((t.name, t) for t in used)
    inputs = tuple(tensor_of(int(i)).name for i in sg.InputsAsNumpy())
    outputs = tuple(tensor_of(int(i)).name for i in sg.OutputsAsNumpy())
    for name in inputs + outputs:
        tensors.setdefault(name, next(t for t in cache.values() if t.name == name))
    if not any(t.dtype in (DType.INT8, DType.UINT8) and t.quant is not None
               for t in tensors.values()):
        raise UnsupportedError(f"{label}: a float model (no int8 weights)",
                               "mnv2gen needs a fully int8-quantised model")
    graph = Graph(name=Path(label).name, tensors=tensors, ops=tuple(ops), inputs=inputs,
                  outputs=outputs, source_sha256=hashlib.sha256(data).hexdigest())
    graph.verify()
    return graph
