"""Arithmetic int8 kernels of the NumPy reference, with TFLite Micro reference semantics.

Every kernel has the signature `kernel(graph, op, args) -> np.ndarray`, where `args`
holds the arrays of `op.inputs` in order (constants included). Integer dot products are
computed with float64 matrix products: every partial sum of int8-range products is an
integer far below 2**53, so the result is exact whatever order BLAS sums in.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from mnv2gen import quant
from mnv2gen.errors import UnsupportedError
from mnv2gen.ir import Activation, Graph, Op, OpKind


def _requantize(acc, multiplier, shift, output, activation: Activation) -> np.ndarray:
    """Return int8 clamp(MultiplyByQuantizedMultiplier(acc) + zero point) of an int32 acc."""
    lo, hi = quant.activation_range(activation, output.scale, output.zero_point)
    out = quant.multiply_by_quantized_multiplier(quant.wrap32(acc), multiplier, shift)
    return np.clip(out + output.zero_point, lo, hi).astype(np.int8)


def _offset_padded(x: np.ndarray, zero_point: int, padding, dtype) -> np.ndarray:
    """Return (x - zero_point) as `dtype`, zero-padded in H and W.

    The reference kernels skip taps outside the image; a zero after the input offset
    contributes nothing, which is the same.
    """
    shifted = x.astype(dtype) - zero_point
    p = padding
    if p.top == p.bottom == p.left == p.right == 0:
        return shifted
    return np.pad(shifted, ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0)))


def _windows(x: np.ndarray, out_hw, kernel_hw, stride_hw, dilation_hw) -> np.ndarray:
    """Return a (N, Ho, Wo, kh, kw, C) strided view of the windows of NHWC `x`."""
    sn, sh, sw, sc = x.strides
    n, _, _, c = x.shape
    return as_strided(x, (n, *out_hw, *kernel_hw, c),
                      (sn, sh * stride_hw[0], sw * stride_hw[1],
                       sh * dilation_hw[0], sw * dilation_hw[1], sc), writeable=False)


def conv2d_accumulators(graph: Graph, op: Op, args) -> np.ndarray:
    """Return CONV_2D's int64 accumulators, bias included, before requantisation."""
    data, weights, bias = args
    out_c, kh, kw, in_c = weights.shape
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    a = op.attrs
    _, ho, wo, _ = out.shape
    padded = _offset_padded(data, x.zero_point, a.padding, np.float64)
    cols = _windows(padded, (ho, wo), (kh, kw), (a.stride_h, a.stride_w),
                    (a.dilation_h, a.dilation_w)).reshape(-1, kh * kw * in_c)
    acc = cols @ weights.reshape(out_c, -1).T.astype(np.float64)
    return acc.astype(np.int64).reshape(out.shape) + bias.astype(np.int64)


def depthwise_accumulators(graph: Graph, op: Op, args) -> np.ndarray:
    """Return DEPTHWISE_CONV_2D's int64 accumulators, bias included."""
    data, weights, bias = args
    _, kh, kw, _ = weights.shape
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    a = op.attrs
    _, ho, wo, _ = out.shape
    padded = _offset_padded(data, x.zero_point, a.padding, np.int32)
    if a.depth_multiplier > 1:  # output channel c * m + j reads input channel c
        padded = np.repeat(padded, a.depth_multiplier, axis=3)
    taps = _windows(padded, (ho, wo), (kh, kw), (a.stride_h, a.stride_w),
                    (a.dilation_h, a.dilation_w))
    acc = np.zeros(out.shape, dtype=np.int32)
    filt = weights.astype(np.int32)
    for i in range(kh):
        for j in range(kw):
            acc += taps[:, :, :, i, j, :] * filt[0, i, j]
    return acc.astype(np.int64) + bias


def fully_connected_accumulators(graph: Graph, op: Op, args) -> np.ndarray:
    """Return FULLY_CONNECTED's int64 accumulators (rows, out_f), bias included."""
    data, weights, bias = args
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    rows = data.reshape(-1, weights.shape[1]).astype(np.float64) - x.zero_point
    # The per-tensor kernel adds the weights offset (-zero point); it is 0 for int8.
    filt = weights.astype(np.float64) - w.quant.zero_point[0]
    return (rows @ filt.T).astype(np.int64) + bias.astype(np.int64)


def requantize_accumulators(graph: Graph, op: Op, acc: np.ndarray) -> np.ndarray:
    """Return the int8 output of a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED from its
    int64 accumulators: per-channel (or per-tensor FC) multipliers, activation clamp."""
    x, w, out = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    channels = acc.shape[-1]
    if op.kind is OpKind.FULLY_CONNECTED and not w.quant.per_channel:
        multipliers, shifts = quant.fc_per_tensor_multiplier(x.scale, w.scale, out.scale)
    else:
        multipliers, shifts = quant.per_channel_multipliers(x.scale, w.quant.scale,
                                                            out.scale, channels)
    return _requantize(acc, multipliers, shifts, out, op.attrs.activation).reshape(out.shape)


def conv2d(graph: Graph, op: Op, args) -> np.ndarray:
    """Return CONV_2D's int8 output (reference_integer_ops::ConvPerChannel)."""
    return requantize_accumulators(graph, op, conv2d_accumulators(graph, op, args))


def depthwise_conv2d(graph: Graph, op: Op, args) -> np.ndarray:
    """Return DEPTHWISE_CONV_2D's int8 output (reference DepthwiseConvPerChannel)."""
    return requantize_accumulators(graph, op, depthwise_accumulators(graph, op, args))


def fully_connected(graph: Graph, op: Op, args) -> np.ndarray:
    """Return FULLY_CONNECTED's int8 output (per-tensor or per-channel weights)."""
    return requantize_accumulators(graph, op, fully_connected_accumulators(graph, op, args))


ACCUMULATORS = {OpKind.CONV_2D: conv2d_accumulators,
                OpKind.DEPTHWISE_CONV_2D: depthwise_accumulators,
                OpKind.FULLY_CONNECTED: fully_connected_accumulators}


def add(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 ADD's output: both inputs shifted left 20 bits, rescaled, summed, rescaled."""
    t1, t2, out = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
    p = quant.add_params(t1.scale, t2.scale, out.scale)
    mbqm = quant.multiply_by_quantized_multiplier
    scaled1 = mbqm((args[0].astype(np.int64) - t1.zero_point) << p.left_shift,
                   p.input1_multiplier, p.input1_shift)
    scaled2 = mbqm((args[1].astype(np.int64) - t2.zero_point) << p.left_shift,
                   p.input2_multiplier, p.input2_shift)
    return _requantize(scaled1 + scaled2, p.output_multiplier, p.output_shift, out,
                       op.attrs.activation)


def _divide_rounding_away(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Return total / count rounded half away from zero, as AveragePool's int division does."""
    half = count // 2
    return np.where(total > 0, (total + half) // count, -((half - total) // count))


def average_pool2d(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 AVERAGE_POOL_2D: the mean of the in-image part of each window."""
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    # The kernel averages raw values, so TFLM's Prepare demands equal quantisation.
    if x.zero_point != out.zero_point or abs(np.float32(x.scale) - np.float32(out.scale)) > 1e-6:
        raise UnsupportedError(f"{op.describe()}: input and output quantisation differ",
                               "AVERAGE_POOL_2D does not rescale (as in TFLite Micro)")
    a, p = op.attrs, op.attrs.padding
    _, ho, wo, _ = out.shape
    pads = ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0))
    values = np.pad(args[0].astype(np.int64), pads)
    inside = np.pad(np.ones((1, *args[0].shape[1:3], 1), dtype=np.int64), pads)
    geometry = ((ho, wo), (a.filter_h, a.filter_w), (a.stride_h, a.stride_w), (1, 1))
    total = _windows(values, *geometry).sum(axis=(3, 4))
    count = _windows(inside, *geometry).sum(axis=(3, 4))
    if not count.all():
        raise UnsupportedError(f"{op.describe()}: a pooling window lies entirely in padding")
    return average_pool_finish(graph, op, total, count)


def average_pool_finish(graph: Graph, op: Op, total: np.ndarray, count) -> np.ndarray:
    """Return AVERAGE_POOL_2D's int8 output from its window sums and in-image counts."""
    out = graph.tensor(op.outputs[0])
    lo, hi = quant.activation_range(op.attrs.activation, out.scale, out.zero_point)
    return np.clip(_divide_rounding_away(total, count), lo, hi).astype(np.int8)


def mean(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 MEAN as TFLM's QuantizedMeanOrSum (any axes, with or without keep_dims).

    The input scale ratio's multiplier is pre-divided by the element count (see
    quant.mean_multiplier); the int32 sum minus zero_point * count is then requantised.
    """
    axes = tuple(sorted(set(op.attrs.axes)))
    return mean_finish(graph, op, quant.wrap32(args[0].astype(np.int64).sum(axis=axes)))


def mean_finish(graph: Graph, op: Op, total: np.ndarray) -> np.ndarray:
    """Return MEAN's int8 output from the int32 (wrapping) sums over the reduced axes."""
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axes = tuple(sorted(set(op.attrs.axes)))
    count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    multiplier, shift = quant.mean_multiplier(x.scale, out.scale, count)
    shifted = quant.wrap32(quant.wrap32(total) - x.zero_point * count)
    result = quant.multiply_by_quantized_multiplier(shifted, multiplier, shift)
    return np.clip(result + out.zero_point, -128, 127).astype(np.int8).reshape(out.shape)


# gemmlowp fixed-point constants (raw int32) used by the int8 softmax.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # (exponent, raw exp(-2**exponent))


def _exp_on_interval(a):
    """Return gemmlowp exp(a) for Q0.31 a in [-1/4, 0): a Taylor series around -1/8."""
    srdhm = quant.saturating_rounding_doubling_high_mul
    constant_term, one_third = 1895147668, 715827883
    x = quant.wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4_over_4 = quant.rounding_divide_by_pot(srdhm(x2, x2), 2)
    poly = quant.rounding_divide_by_pot(
        quant.wrap32(srdhm(quant.wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return quant.wrap32(constant_term + srdhm(constant_term, quant.wrap32(x + poly)))


def exp_on_negative_values_q5(a):
    """Return gemmlowp exp_on_negative_values of Q5.26 raw values as Q0.31 raw values."""
    srdhm = quant.saturating_rounding_doubling_high_mul
    quarter = 1 << 24
    mod_quarter = quant.wrap32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval(quant.saturating_left_shift(mod_quarter, 5))
    remainder = quant.wrap32(mod_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        bit = (remainder & (1 << (26 + exponent))) != 0
        result = np.where(bit, srdhm(result, multiplier), result)
    return np.where(a == 0, quant.INT32_MAX, result)


def _one_over_one_plus_x(a):
    """Return gemmlowp one_over_one_plus_x_for_x_in_0_1 on Q0.31 raw values (Newton-Raphson)."""
    srdhm = quant.saturating_rounding_doubling_high_mul
    total = a + quant.INT32_MAX
    half_denominator = np.where(total >= 0, (total + 1) // 2, -((-total + 1) // 2))
    x = quant.wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = quant.wrap32((1 << 29) - srdhm(half_denominator, x))
        x = quant.wrap32(x + quant.saturating_left_shift(srdhm(x, one_minus), 2))
    return quant.saturating_left_shift(x, 1)


def softmax(graph: Graph, op: Op, args) -> np.ndarray:
    """Return int8 SOFTMAX over the last axis (output scale 1/256, zero point -128)."""
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if out.zero_point != -128 or np.float32(out.scale) != np.float32(1 / 256):
        raise UnsupportedError(f"{op.describe()}: int8 softmax output must have scale 1/256 "
                               f"and zero point -128, got {out.scale} and {out.zero_point}")
    multiplier, left_shift = quant.preprocess_softmax_scaling(op.attrs.beta, x.scale)
    diff_min = -quant.calculate_input_radius(5, left_shift)
    data = args[0].astype(np.int64)
    diff = data - data.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = quant.saturating_rounding_doubling_high_mul(
        quant.wrap32(diff << left_shift), multiplier)
    exp = exp_on_negative_values_q5(scaled)
    sum_of_exps = quant.wrap32(np.where(valid, quant.rounding_divide_by_pot(exp, 12), 0)
                               .sum(axis=-1, keepdims=True))
    # GetReciprocal: normalise the Q12.19 sum to [1, 2) and invert it.
    bit_length = (sum_of_exps[..., None] >= (np.int64(1) << np.arange(32))).sum(axis=-1)
    headroom_plus_one = 32 - bit_length
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_minus_one = ((sum_of_exps << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    reciprocal = _one_over_one_plus_x(shifted_minus_one)
    exponent = num_bits_over_unit + 31 - 8
    unsat = quant.rounding_divide_by_pot(
        quant.saturating_rounding_doubling_high_mul(reciprocal, exp), exponent)
    result = np.where(valid, np.clip(unsat - 128, -128, 127), -128)
    return result.astype(np.int8)
