"""Integer quantisation math of TFLite Micro, bit for bit, as pure NumPy functions.

Rounding choice: TFLite's *default* double rounding. `multiply_by_quantized_multiplier`
is gemmlowp's saturating rounding doubling high multiply (ties toward +infinity)
followed by a rounding right shift (ties away from zero): TFLite built without
TFLITE_SINGLE_ROUNDING, as the tflite-micro Python interpreter is. It is also CMSIS-NN's
default (CMSIS_NN_USE_SINGLE_ROUNDING undefined; its arm_nn_requantize computes the same
values), so C code calling CMSIS-NN with the multipliers/shifts computed here matches the
reference. Rounding twice differs from rounding once: 5 x 0.25 gives 2, not 1.

Conventions: a `(multiplier, shift)` pair means real ~= multiplier * 2**(shift - 31), with
multiplier in [2**30, 2**31) (or 0) and shift positive = left shift, as TFLite and
CMSIS-NN store them. Integer arrays are int64 holding int32 values; `wrap32` reproduces
the two's-complement wrap of C int32 arithmetic where C code would wrap.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mnv2gen.ir import Activation

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap32(x):
    """Return `x` (int64 array or int) wrapped to the int32 range as C int32 arithmetic does."""
    # NumPy's narrowing integer cast keeps the low 32 bits (two's complement).
    return np.asarray(x, dtype=np.int64).astype(np.int32).astype(np.int64)


def round_half_away(x):
    """Return float64 `x` rounded half away from zero (C `round`/`roundf`, TfLiteRound)."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(x)
    # Above 2**52 every double is an integer and adding 0.5 could round up.
    return np.where(mag >= 2.0 ** 52, x, np.copysign(np.floor(mag + 0.5), x))


def affine_quantize(x, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Return TFLite's AffineQuantize of float32 values as int64 in [qmin, qmax]:
    roundf(x / scale) (float32 division, ties away from zero) + zero_point, saturated.
    The QUANTIZE reference kernel and the pixel lookup tables of codegen/pixels.py use it."""
    rounded = round_half_away(np.asarray(x, np.float32) / np.float32(scale))
    in_range = (rounded >= INT32_MIN) & (rounded <= INT32_MAX)
    # Out-of-range float -> int32 casts are undefined in C; x86 yields INT32_MIN.
    as_int = np.where(in_range, np.nan_to_num(rounded), INT32_MIN).astype(np.int64)
    return np.clip(wrap32(as_int + zero_point), qmin, qmax)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Return TFLite's QuantizeMultiplier(real): (multiplier, shift).

    frexp splits real = q * 2**shift with q in [0.5, 1); the multiplier is
    round(q * 2**31) (half away from zero). If that rounds up to 2**31 it is halved and
    the shift incremented; a shift below -31 flushes to (0, 0); real == 0 gives (0, 0).
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"quantize_multiplier needs a finite non-negative value, got {real}")
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * float(1 << 31)))  # q * 2**31 is exact in double
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """Return QuantizeMultiplierSmallerThanOneExp(real), 0 < real < 1: (multiplier, shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} is not in (0, 1)")
    return quantize_multiplier(real)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """Return QuantizeMultiplierGreaterThanOne(real) for real > 1: (multiplier, shift >= 0)."""
    if not real > 1.0:
        raise ValueError(f"multiplier {real} is not greater than 1")
    return quantize_multiplier(real)


def saturating_rounding_doubling_high_mul(a, b):
    """Return gemmlowp's SaturatingRoundingDoublingHighMul(a, b) elementwise (int64 array).

    (a * b + nudge) / 2**31 with C truncating division, nudge = +2**30 for a non-negative
    product and 1 - 2**30 otherwise, i.e. round(a * b / 2**31) with ties toward +infinity;
    INT32_MIN * INT32_MIN saturates to INT32_MAX.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    # floor((ab + 2**30) / 2**31) equals the truncating form above for every sign of ab.
    high = (a * b + (1 << 30)) >> 31
    if np.any(a == INT32_MIN) and np.any(b == INT32_MIN):
        high = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)
    return high


def rounding_divide_by_pot(x, exponent):
    """Return gemmlowp's RoundingDivideByPOT(x, exponent): x / 2**exponent, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    # gemmlowp: (x >> e) + (remainder > (mask >> 1) + (x < 0)), with mask = 2**e - 1. The
    # same as one floored shift of x + 2**(e-1) (x >= 0) or x + 2**(e-1) - 1 (x < 0) for
    # e > 0, and x for e = 0; in one pass over x instead of five.
    positive_e = exponent > 0
    half = ((np.int64(1) << exponent) - 1) >> 1
    return (x + (half + positive_e) - ((x < 0) & positive_e)) >> exponent


def saturating_left_shift(x, exponent: int):
    """Return gemmlowp's SaturatingRoundingMultiplyByPOT<exponent>(x) for exponent > 0."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def multiply_by_quantized_multiplier(acc, multiplier, shift):
    """Return TFLite's MultiplyByQuantizedMultiplier(acc, multiplier, shift) (int32 variant).

    Broadcasts: `multiplier` and `shift` may be scalars or per-channel arrays along the
    last axis. Double rounding: wrap32(acc << max(shift, 0)), high multiply, then a
    rounding right shift by max(-shift, 0). Returns an int64 array of int32 values.
    """
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.asarray(acc, dtype=np.int64)
    if np.any(left > 0):
        shifted = wrap32(shifted << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier),
                                  right)


def _quantize_scalar(value: float, scale: float, zero_point: int) -> int:
    """Return zero_point + roundf(value / scale) with float32 division (kernel_util's Quantize)."""
    q = float(round_half_away(np.float32(value) / np.float32(scale)))
    if not INT32_MIN <= q <= INT32_MAX:
        raise ValueError(f"{value} / {scale} does not fit in int32")
    return zero_point + int(q)


@functools.lru_cache(maxsize=4096)
def activation_range(activation: Activation, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """Return CalculateActivationRangeQuantized for an int8 output: (act_min, act_max)."""
    bounds = {Activation.NONE: (None, None), Activation.RELU: (0.0, None),
              Activation.RELU6: (0.0, 6.0), Activation.RELU_N1_TO_1: (-1.0, 1.0)}
    low, high = bounds[activation]
    act_min = qmin if low is None else max(qmin, _quantize_scalar(low, scale, zero_point))
    act_max = qmax if high is None else min(qmax, _quantize_scalar(high, scale, zero_point))
    return act_min, act_max


def _f32(x: float) -> float:
    """Return x rounded to float32 and widened back to double (a TfLiteTensor scale)."""
    return float(np.float32(x))


def per_channel_multipliers(input_scale: float, filter_scales, output_scale: float,
                            channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Return per-channel (multipliers, shifts) int64 arrays of length `channels`.

    As PopulateConvolutionQuantizationParams (CONV_2D, DEPTHWISE_CONV_2D) and the
    per-channel FULLY_CONNECTED path: in double, input_scale * filter_scale / output_scale
    with every float32 scale widened to double; a single filter scale is repeated.
    """
    multipliers, shifts = _per_channel(float(input_scale), tuple(filter_scales),
                                       float(output_scale), int(channels))
    return np.array(multipliers, dtype=np.int64), np.array(shifts, dtype=np.int64)


@functools.lru_cache(maxsize=4096)
def _per_channel(input_scale: float, filter_scales: tuple, output_scale: float,
                 channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    scales = list(filter_scales)
    if len(scales) == 1:
        scales = scales * channels
    if len(scales) != channels:
        raise ValueError(f"{len(scales)} filter scales for {channels} channels")
    pairs = [quantize_multiplier(_f32(input_scale) * _f32(s) / _f32(output_scale))
             for s in scales]
    return tuple(m for m, _ in pairs), tuple(s for _, s in pairs)


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float,
                             output_scale: float) -> tuple[int, int]:
    """Return (multiplier, shift) of a per-tensor FULLY_CONNECTED.

    GetQuantizedConvolutionMultipler forms input_scale * filter_scale in *float32* and
    only then divides by output_scale in double, unlike the per-channel path.
    """
    product = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(product / _f32(output_scale))


@dataclass(frozen=True)
class AddParams:
    """Quantised ADD parameters (TFLM's OpDataAdd for int8); shifts are <= 0."""

    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_params(input1_scale: float, input2_scale: float, output_scale: float,
               left_shift: int = 20) -> AddParams:
    """Return the int8 ADD parameters TFLM computes (left_shift 20, inputs at 2*max scale)."""
    twice_max = 2 * max(_f32(input1_scale), _f32(input2_scale))
    m1, s1 = quantize_multiplier_smaller_than_one(_f32(input1_scale) / twice_max)
    m2, s2 = quantize_multiplier_smaller_than_one(_f32(input2_scale) / twice_max)
    mo, so = quantize_multiplier_smaller_than_one(
        twice_max / ((1 << left_shift) * _f32(output_scale)))
    return AddParams(left_shift, m1, s1, m2, s2, mo, so)


def requantize_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """Return (multiplier, shift) of input_scale / output_scale in double (MEAN, QUANTIZE)."""
    return quantize_multiplier(_f32(input_scale) / _f32(output_scale))


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """Return the (multiplier, shift) an int8 MEAN over `count` elements applies to its sum.

    As TFLM's QuantizedMeanOrSum: the scale ratio's multiplier is divided by `count`
    after shifting it left by s = min(floor(log2 count), 32, 31 + shift) bits (integer
    division, truncating), and the shift lowered by s.
    """
    multiplier, shift = requantize_multiplier(input_scale, output_scale)
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << s) // count, shift - s


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               input_integer_bits: int = 5) -> tuple[int, int]:
    """Return PreprocessSoftmaxScaling: (input_multiplier, input_left_shift).

    Real multiplier min(beta * input_scale * 2**(31 - integer_bits), 2**31 - 1) in
    double, quantised with QuantizeMultiplierGreaterThanOne.
    """
    real = min(_f32(beta) * _f32(input_scale) * float(1 << (31 - input_integer_bits)),
               float((1 << 31) - 1))
    return quantize_multiplier_greater_than_one(real)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """Return CalculateInputRadius: floor((2**ib - 1) * 2**(tsb - ib) / 2**left_shift)."""
    radius = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits
                                                                  - input_integer_bits))
              / float(1 << input_left_shift))
    return int(math.floor(radius))
