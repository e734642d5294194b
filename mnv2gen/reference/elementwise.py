"""Elementwise kernels: SUB, MUL (with broadcast), HARD_SWISH, LOGISTIC (int8), and the
float32 ADD/SUB/MUL a model may run after its last DEQUANTIZE.

TFLite Micro reference semantics (reference_ops::BroadcastQuantSubSlow / SubElementwise,
reference_integer_ops::Mul / BroadcastMul6DSlow, reference_ops::HardSwish,
reference_integer_ops::Logistic), with the parameters of `mnv2gen.quant_params`.
Broadcasting follows NumPy, which is what TFLite's broadcast loops compute.
"""

from __future__ import annotations

import numpy as np

from mnv2gen import quant, quant_params, reference_ops
from mnv2gen.ir import Activation, DType, Graph, Op, OpKind
from mnv2gen.reference_ops import _exp_on_interval, _one_over_one_plus_x

_INT16_MIN, _INT16_MAX = -(1 << 15), (1 << 15) - 1


def _clamped(values, graph: Graph, op: Op) -> np.ndarray:
    out = graph.tensor(op.outputs[0])
    lo, hi = quant.activation_range(op.attrs.activation, out.scale, out.zero_point)
    return np.clip(values + out.zero_point, lo, hi).astype(np.int8)


_FLOAT_RANGES = {Activation.NONE: (-np.inf, np.inf), Activation.RELU: (0.0, np.inf),
                 Activation.RELU6: (0.0, 6.0), Activation.RELU_N1_TO_1: (-1.0, 1.0)}
_FLOAT_OPS = {OpKind.ADD: np.add, OpKind.SUB: np.subtract, OpKind.MUL: np.multiply}


def _float_binary(op: Op, args) -> np.ndarray:
    """Return TFLite's float32 ADD/SUB/MUL: one IEEE float32 operation, then the clamp."""
    lo, hi = _FLOAT_RANGES[op.attrs.activation]
    value = _FLOAT_OPS[op.kind](np.float32(args[0]), np.float32(args[1]), dtype=np.float32)
    return np.clip(value, np.float32(lo), np.float32(hi)).astype(np.float32)


def _or_float(kernel):
    """Return `kernel` dispatching float32 operands to the float arithmetic."""
    def run(graph: Graph, op: Op, args) -> np.ndarray:
        if graph.tensor(op.outputs[0]).dtype is DType.FLOAT32:
            return _float_binary(op, args)
        return kernel(graph, op, args)
    run.__doc__ = kernel.__doc__
    return run


def _sub_int8(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 SUB: both inputs shifted left 20 bits and rescaled, differenced, rescaled."""
    t1, t2, out = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    p = quant_params.sub_params(t1.scale, t2.scale, out.scale)
    mbqm = quant.multiply_by_quantized_multiplier
    scaled1 = mbqm((args[0].astype(np.int64) - t1.zero_point) << p.left_shift,
                   p.input1_multiplier, p.input1_shift)
    scaled2 = mbqm((args[1].astype(np.int64) - t2.zero_point) << p.left_shift,
                   p.input2_multiplier, p.input2_shift)
    raw = mbqm(quant.wrap32(scaled1 - scaled2), p.output_multiplier, p.output_shift)
    return _clamped(raw, graph, op)


def _mul_int8(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 MUL: MultiplyByQuantizedMultiplier((x1 - z1) * (x2 - z2)) + z_out."""
    t1, t2, out = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    multiplier, shift = quant_params.mul_multiplier(t1.scale, t2.scale, out.scale)
    product = (args[0].astype(np.int64) - t1.zero_point) * (args[1].astype(np.int64)
                                                            - t2.zero_point)
    raw = quant.multiply_by_quantized_multiplier(product, multiplier, shift)
    return _clamped(raw, graph, op)


sub = _or_float(_sub_int8)
mul = _or_float(_mul_int8)
add = _or_float(reference_ops.add)


def _srdhm16(a, b):
    """Return gemmlowp's int16 SaturatingRoundingDoublingHighMul."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    high = (a * b + (1 << 14)) >> 15  # floor form of the sign-dependent nudge + truncation
    return np.where((a == _INT16_MIN) & (b == _INT16_MIN), _INT16_MAX, high)


def _sdhm16(a, b):
    """Return TFLite's int16 SaturatingDoublingHighMul: a * b / 2**15 truncated toward 0."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    high = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == _INT16_MIN) & (b == _INT16_MIN), _INT16_MAX, high)


def _saturating_left_shift16(x, amount: int):
    return np.clip(np.asarray(x, np.int64) << amount, _INT16_MIN, _INT16_MAX)


def hard_swish_values(x: np.ndarray, p: quant_params.HardSwishParams) -> np.ndarray:
    """Return reference_ops::HardSwish<int8> of int8 `x` (16-bit fixed-point path)."""
    hires = (x.astype(np.int64) - p.input_zero_point) * (1 << 7)
    preshift_output = _srdhm16(hires, p.output_multiplier)
    reluish = hires
    if p.reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, p.reluish_exponent - 1)
    reluish = _srdhm16(reluish, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if p.reluish_exponent < 0:
        reluish = quant.rounding_divide_by_pot(reluish, -p.reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1] in Q0.15
    value = _sdhm16(reluish, preshift_output)
    value = quant.rounding_divide_by_pot(value, -p.output_exponent) + p.output_zero_point
    return np.clip(value, -128, 127).astype(np.int8)


def hard_swish(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 HARD_SWISH: x * relu6(x + 3) / 6 in TFLite's fixed-point arithmetic."""
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    p = quant_params.hard_swish_params(x.scale, x.zero_point, out.scale, out.zero_point)
    return hard_swish_values(args[0], p)


def _exp_on_negative_values(a, integer_bits: int):
    """Return gemmlowp exp_on_negative_values of Q(integer_bits) raw values, Q0.31 out."""
    srdhm = quant.saturating_rounding_doubling_high_mul
    fractional = 31 - integer_bits
    quarter = 1 << (fractional - 2)
    mod_quarter = quant.wrap32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval(quant.saturating_left_shift(mod_quarter, integer_bits))
    remainder = quant.wrap32(mod_quarter - a)
    barrel = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242))
    for exponent, multiplier in barrel:
        if integer_bits > exponent:
            bit = (remainder & (1 << (fractional + exponent))) != 0
            result = np.where(bit, srdhm(result, multiplier), result)
    return np.where(a == 0, quant.INT32_MAX, result)


def logistic_q4(a: np.ndarray) -> np.ndarray:
    """Return gemmlowp logistic of Q4.27 raw values as Q0.31 raw values."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    absolute = np.where(positive, a, -a)
    if_positive = _one_over_one_plus_x(
        _exp_on_negative_values(-absolute, quant_params.LOGISTIC_INPUT_BITS))
    if_negative = quant.INT32_MAX - if_positive
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))


def logistic_values(x: np.ndarray, p: quant_params.LogisticParams) -> np.ndarray:
    """Return reference_integer_ops::Logistic of int8 `x` (output scale 1/256, zp -128)."""
    centred = x.astype(np.int64) - p.input_zero_point
    inside = np.abs(centred) < p.input_range_radius
    q4 = quant.multiply_by_quantized_multiplier(np.where(inside, centred, 0),
                                                p.input_multiplier, p.input_left_shift)
    q23 = quant.rounding_divide_by_pot(logistic_q4(q4), 31 - 8)
    inner = np.clip(q23 - 128, -128, 127)
    return np.where(centred <= -p.input_range_radius, -128,
                    np.where(centred >= p.input_range_radius, 127, inner)).astype(np.int8)


def logistic(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 LOGISTIC. Like TFLite Micro, the output is produced on scale 1/256 with
    zero point -128 whatever the output tensor says (Prepare checks only the zero point)."""
    x = graph.tensor(op.inputs[0])
    return logistic_values(args[0], quant_params.logistic_params(x.scale, x.zero_point))
